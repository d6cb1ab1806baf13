"""The watch stream's line splitter (lbprov.kube.client._lines): every way the server's chunks can
cut the body gives the same lines. The splitter keeps the unfinished line in a bytearray, so a large
object arriving in many small chunks is copied once, not once per chunk."""

from __future__ import annotations

import random
from collections.abc import Iterator

from lbprov.kube.client import _lines


class Chunks:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def stream(self, amt: object = None, decode_content: bool = False) -> Iterator[bytes]:
        del amt, decode_content
        yield from self.chunks


def cut(body: bytes, rng: random.Random) -> list[bytes]:
    out, i = [], 0
    while i < len(body):
        n = rng.choice([0, 1, 2, 7, 64, 4096])
        out.append(body[i : i + n])
        i += n
    return out


def test_any_cut_of_the_body_gives_the_same_lines() -> None:
    lines = [b'{"type":"ADDED","n":%d}' % i for i in range(50)] + [b"x" * 100_000, b"", b"last"]
    body = b"\n".join(lines) + b"\n"
    rng = random.Random(7)
    for _ in range(30):
        assert list(_lines(Chunks(cut(body, rng)))) == lines


def test_a_last_line_without_its_newline_is_still_yielded() -> None:
    assert list(_lines(Chunks([b"a\nb", b"c"]))) == [b"a", b"bc"]
    assert list(_lines(Chunks([b"a\n", b"", b"\n"]))) == [b"a", b""]
    assert list(_lines(Chunks([]))) == []


def test_a_large_line_in_one_byte_chunks() -> None:
    big = b"y" * 20_000
    assert list(_lines(Chunks([big[i : i + 1] for i in range(len(big))] + [b"\nz\n"]))) == [big, b"z"]
