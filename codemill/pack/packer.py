"""Pack tokenized documents into fixed-length rows by best-fit decreasing, cutting FIM
examples to fit.

Ding et al. 2024 ("Fewer Truncations Improve Language Modeling"): a document that fits
in a row is never split; a longer one is cut into row-sized pieces from its start, and
its remainder is packed like a short document. "Fits" is said of the plain unit
``BOS document EOS``: a document (or remainder) that fits a row as plain text but not
with the FIM tokens (or whose FIM cut re-encodes a token longer) is packed plain even
when FIM is drawn for it, and counted (:attr:`Packer.fim_to_plain`), since a FIM
example is never cut across rows. Then every piece that waits for a row,
longest first, goes into the open row with the least free space that holds it (a new
row when none does). Concatenation cuts most documents at a row boundary; this packs
as tightly and cuts only what must be cut.

A unit is what one segment of a row holds: ``BOS body [EOS]``. FIM is decided per unit,
*after* the cut, so every FIM example lies whole inside one row (the model always sees
its prefix, suffix and middle together).

Plain units end with EOS only where the document ends; FIM units always end with EOS
(the model must learn where the middle stops). FIM cut points are random *characters*
of the piece. The piece was encoded once; only the few bytes of a token that a cut
splits are encoded again, so FIM costs almost no extra tokenization and prefix +
middle + suffix decode to exactly the piece.

Rows are numbered so that a document's units in (sequence, start) order rebuild it (the
documents.parquet contract, docs/architecture.md): the row-sized pieces of long
documents come first, in arrival order, then the best-fit rows.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from codemill.pack.fim import PLAIN, PSM, SPM, psm_layout, spm_layout
from codemill.pack.tokenizer import TextEncoder
from codemill.stage import InputError

FIM_OVERHEAD = 5  # BOS, three sentinels, EOS
FIM_TRIES = 4  # a cut that splits a token re-encodes it, often one token longer: cut shorter, try again


@dataclass(slots=True)
class Unit:
    """One segment of a row (one row of documents.parquet)."""

    sequence: int
    start: int
    length: int
    document: int
    format: str


@dataclass
class Packed:
    """A split's packed rows, before they are written."""

    seq_len: int
    pad: int
    units: list[Unit] = field(default_factory=list)
    arrays: list[np.ndarray] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return (self.units[-1].sequence + 1) if self.units else 0

    @property
    def split_documents(self) -> int:
        """Documents that span more than one unit: only those longer than a row (``BOS doc EOS``
        does not fit), as a document that fits plain is packed plain when FIM would split it."""
        seen: dict[int, int] = {}
        for u in self.units:
            seen[u.document] = seen.get(u.document, 0) + 1
        return sum(n > 1 for n in seen.values())

    def tokens_and_segments(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows of token ids and of segment numbers (0, 1, ... per row; -1 on padding).
        ``units`` are in (sequence, start) order."""
        tokens = np.full((self.rows, self.seq_len), self.pad, dtype=np.uint32)
        segments = np.full((self.rows, self.seq_len), -1, dtype=np.int32)
        segment = 0
        for i, (u, arr) in enumerate(zip(self.units, self.arrays)):
            segment = 0 if i == 0 or u.sequence != self.units[i - 1].sequence else segment + 1
            tokens[u.sequence, u.start : u.start + u.length] = arr
            segments[u.sequence, u.start : u.start + u.length] = segment
        return tokens, segments


class _Doc:
    """A tokenized document with what cutting needs: byte offsets and clean cut points."""

    def __init__(self, ids: np.ndarray, data: bytes, byte_lengths: np.ndarray):
        self.ids = ids
        self.data = data
        self.offsets = np.concatenate([[0], np.cumsum(byte_lengths[ids])])
        raw = np.frombuffer(data, dtype=np.uint8)
        starts = raw[self.offsets[:-1]] if len(ids) else raw[:0]
        # a cut between tokens is clean where the next byte starts a UTF-8 character
        self.clean = np.append((starts & 0xC0) != 0x80, True)

    def cut(self, pos: int, take: int) -> int:
        """The longest piece of at most ``take`` tokens from ``pos`` that ends on a clean cut."""
        while take > 0 and not self.clean[pos + take]:
            take -= 1
        return take


class Packer:
    """Collects the units of the documents it is given; :attr:`out` packs them into rows.

    ``min_unit_tokens`` is accepted for the config's sake: best fit puts every piece where
    it fits, so no row is closed early for lack of space (see docs/pack.md).
    """

    def __init__(
        self,
        encoder: TextEncoder,
        seq_len: int,
        fim_rate: float,
        spm_rate: float,
        min_unit_tokens: int,
        rng: np.random.Generator,
    ):
        self.enc, self.seq_len, self.rng = encoder, seq_len, rng
        self.fim_rate, self.spm_rate, self.min_unit = fim_rate, spm_rate, min_unit_tokens
        self.ids = encoder.ids
        self.full: list[tuple[np.ndarray, int, str]] = []  # (unit, document, format): a row each
        self.pieces: list[tuple[np.ndarray, int, str]] = []  # whole short documents and remainders
        self.fim_to_plain = 0  # drawn FIM, packed plain: the rest fits a row only without the FIM tokens
        self._out: Packed | None = None

    def add(self, document: int, ids: np.ndarray, data: bytes) -> None:
        """Take one document (``data`` is its UTF-8 text, ``ids`` its plain-text tokens)."""
        doc = _Doc(ids, data, self.enc.byte_lengths)
        if doc.offsets[-1] != len(data):
            raise InputError(
                f"the tokenizer does not reproduce text byte for byte (document {document}: "
                f"its tokens stand for {doc.offsets[-1]} of {len(data)} bytes)"
            )
        self._out = None
        pos, n = 0, len(ids)
        while pos < n:
            fmt = self._draw()
            unit, take = self._fim(doc, pos, self.seq_len, fmt) if fmt != PLAIN else (None, 0)
            if unit is not None and pos + take < n and n - pos + 2 <= self.seq_len:
                unit = None  # the rest fits a row as plain text: a FIM unit would split it
                self.fim_to_plain += 1
            if unit is None:  # plain drawn, the rest fits only as plain, or no FIM cut fits a row (rare)
                fmt, (unit, take) = PLAIN, self._plain(doc, pos, self.seq_len)
            # the rest fits in a row as this unit: it waits for the best fit; else a row of its own
            (self.pieces if pos + take == n else self.full).append((unit, document, fmt))
            pos += take

    @property
    def out(self) -> Packed:
        """The packed rows (computed once after the last :meth:`add`)."""
        if self._out is None:
            self._out = self._place()
        return self._out

    def _draw(self) -> str:
        if self.rng.random() < self.fim_rate:
            return SPM if self.rng.random() < self.spm_rate else PSM
        return PLAIN

    def _place(self) -> Packed:
        """Best-fit decreasing: each waiting piece, longest first (ties in arrival order), into
        the open row with the least free space that holds it."""
        bins: list[list[int]] = []
        rows_with: dict[int, list[int]] = {}  # free space -> open rows with exactly that much
        frees: list[int] = []  # the keys of rows_with, sorted
        for i in sorted(range(len(self.pieces)), key=lambda i: (-len(self.pieces[i][0]), i)):
            need = len(self.pieces[i][0])
            k = bisect.bisect_left(frees, need)
            if k < len(frees):
                free = frees[k]
                row = rows_with[free].pop()
                if not rows_with[free]:
                    del rows_with[free], frees[k]
            else:
                free, row = self.seq_len, len(bins)
                bins.append([])
            bins[row].append(i)
            left = free - need
            if left:
                if left not in rows_with:
                    bisect.insort(frees, left)
                rows_with.setdefault(left, []).append(row)
        out = Packed(self.seq_len, self.ids["pad"])
        for row, (unit, document, fmt) in enumerate(self.full):
            out.units.append(Unit(row, 0, len(unit), document, fmt))
            out.arrays.append(unit)
        for b, members in enumerate(bins):
            start = 0
            for i in members:
                unit, document, fmt = self.pieces[i]
                out.units.append(Unit(len(self.full) + b, start, len(unit), document, fmt))
                out.arrays.append(unit)
                start += len(unit)
        return out

    def _plain(self, doc: _Doc, pos: int, free: int) -> tuple[np.ndarray, int]:
        rest = len(doc.ids) - pos
        if rest + 2 <= free:
            return np.concatenate([[self.ids["bos"]], doc.ids[pos:], [self.ids["eos"]]]).astype(np.uint32), rest
        take = doc.cut(pos, min(free - 1, rest - 1))  # leave the document's end (and its EOS) for later
        return np.concatenate([[self.ids["bos"]], doc.ids[pos : pos + take]]).astype(np.uint32), take

    def _fim(self, doc: _Doc, pos: int, free: int, fmt: str) -> tuple[np.ndarray | None, int]:
        take = min(len(doc.ids) - pos, free - FIM_OVERHEAD)
        for _ in range(FIM_TRIES):
            take = doc.cut(pos, take)
            if take <= 0:
                return None, 0
            prefix, middle, suffix, suffix_start = self._fim_parts(doc, pos, take)
            over = FIM_OVERHEAD + len(prefix) + len(middle) + len(suffix) - free
            if over > 0:  # a re-encoded cut grew: end the piece earlier, inside the suffix's plain tokens
                shorter = doc.cut(pos, take - over)
                if shorter < suffix_start:
                    take -= over
                    continue  # the second cut is too close to the end: draw new cuts
                suffix, take = suffix[: len(suffix) - (take - shorter)], shorter
            layout = psm_layout if fmt == PSM else spm_layout
            body = layout(
                self.ids["fim_begin"],
                self.ids["fim_hole"],
                self.ids["fim_end"],
                prefix.tolist(),
                middle.tolist(),
                suffix.tolist(),
            )
            return np.array([self.ids["bos"], *body, self.ids["eos"]], dtype=np.uint32), take
        return None, 0  # still too long: the caller starts it on a new row or packs it plain

    def _fim_parts(self, doc: _Doc, pos: int, take: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """(prefix, middle, suffix) ids of the piece ``[pos, pos + take)`` at two random
        characters, and the piece-relative index from which the suffix is the piece's own tokens."""
        tokens = doc.ids[pos : pos + take]
        offsets = doc.offsets[pos : pos + take + 1] - doc.offsets[pos]
        clean = doc.clean[pos : pos + take + 1]
        piece = doc.data[doc.offsets[pos] : doc.offsets[pos + take]]
        text = piece.decode("utf-8")
        ci, cj = (len(text[:c].encode("utf-8")) for c in np.sort(self.rng.integers(0, len(text) + 1, size=2)))
        lo_i, hi_i = _around(offsets, clean, ci)
        lo_j, hi_j = _around(offsets, clean, cj)
        if hi_i <= lo_j:
            spans = [(offsets[lo_i], ci), (ci, offsets[hi_i]), (offsets[lo_j], cj), (cj, offsets[hi_j])]
        else:  # both cuts fall inside the same token
            spans = [(offsets[lo_i], ci), (ci, cj), (cj, cj), (cj, offsets[hi_j])]
        head_i, tail_i, head_j, tail_j = self.enc.encode_fragments([piece[a:b].decode("utf-8") for a, b in spans])
        prefix = np.concatenate([tokens[:lo_i], head_i])
        middle = np.concatenate([tail_i, tokens[hi_i:lo_j], head_j]) if hi_i <= lo_j else tail_i
        suffix = np.concatenate([tail_j, tokens[hi_j:]])
        return prefix, middle, suffix, hi_j


def _around(offsets: np.ndarray, clean: np.ndarray, c: int) -> tuple[int, int]:
    """Indices of the nearest clean token boundaries at or before and at or after byte ``c``."""
    k = int(np.searchsorted(offsets, c, side="right")) - 1
    lo = k
    while not clean[lo] or offsets[lo] > c:
        lo -= 1
    hi = k if offsets[k] == c and clean[k] else k + 1
    while not clean[hi]:
        hi += 1
    return lo, hi
