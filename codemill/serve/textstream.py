"""From sampled token ids to the text a client sees, one token at a time.

Two things make this more than ``tokenizer.decode``:

* Byte-level BPE splits multi-byte characters across tokens, so decoding the newest
  token alone can end in half a character (U+FFFD). Text is decoded over a small window
  of recent tokens and released only once it ends on a whole character (the
  prefix/read-offset scheme used by text-generation-inference).
* Stop sequences are cut out of the output, so text that could still turn out to be the
  start of a stop sequence is held back until it cannot (a stream never shows a client
  the first half of a stop sequence it will then not get the rest of).

Decoding each step costs O(window), not O(tokens so far).
"""

from __future__ import annotations


class ChoiceText:
    """The text of one choice; ``push`` each sampled token, send what it returns.

    ``finish_reason`` becomes ``"stop"`` (end-of-sequence token or a stop sequence) or
    ``"length"`` (``max_tokens`` sampled). ``tokens`` counts every sampled token,
    end-of-sequence included, as OpenAI's ``completion_tokens`` does.
    """

    def __init__(self, tokenizer, max_tokens: int, stop: list[str] | tuple = (), eos_ids: frozenset[int] = frozenset()):
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.stop = list(stop)
        self.eos_ids = eos_ids
        self.tokens: list[int] = []
        self.text = ""
        self.finish_reason: str | None = None
        self._sent = 0  # characters of `text` already handed out
        self._prefix_offset = 0  # decode window: tokens[_prefix_offset:]
        self._read_offset = 0  # tokens before this are already in `text`

    def push(self, token_id: int) -> str:
        """Add one sampled token; returns the text that may be sent now (maybe "")."""
        if self.finish_reason is not None:
            raise RuntimeError("push after the choice finished")
        self.tokens.append(token_id)
        if token_id in self.eos_ids:
            return self._finish("stop")
        self.text += self._decode_new()
        cut = self._find_stop()
        if cut is not None:
            self.text = self.text[:cut]
            return self._finish("stop", flush_decoder=False)
        if len(self.tokens) >= self.max_tokens:
            return self._finish("length")
        return self._release(len(self.text) - self._held_back())

    # -------------------------------------------------------------------- decoding

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def _decode_new(self, final: bool = False, end: int | None = None) -> str:
        ids = self.tokens[:end] if end is not None else self.tokens
        before = self._decode(ids[self._prefix_offset : self._read_offset])
        after = self._decode(ids[self._prefix_offset :])
        if len(after) > len(before) and (final or not after.endswith("\ufffd")):
            self._prefix_offset, self._read_offset = self._read_offset, len(ids)
            return after[len(before) :]
        return ""

    # -------------------------------------------------------------------- stop sequences

    def _find_stop(self) -> int | None:
        # A stop sequence cannot start inside text already sent: it would have been held back.
        hits = [i for i in (self.text.find(s, self._sent) for s in self.stop) if i >= 0]
        return min(hits) if hits else None

    def _held_back(self) -> int:
        """Length of the longest tail of `text` that is the start of a stop sequence."""
        held = 0
        for s in self.stop:
            for k in range(min(len(s) - 1, len(self.text)), held, -1):
                if self.text.endswith(s[:k]):
                    held = k
                    break
        return held

    # -------------------------------------------------------------------- output

    def _release(self, upto: int) -> str:
        if upto <= self._sent:
            return ""
        delta, self._sent = self.text[self._sent : upto], upto
        return delta

    def _finish(self, reason: str, flush_decoder: bool = True) -> str:
        if flush_decoder:
            # Half a character left in the window is sent as U+FFFD rather than lost.
            end = len(self.tokens) - 1 if self.tokens[-1] in self.eos_ids else None
            self.text += self._decode_new(final=True, end=end)
            cut = self._find_stop()
            if cut is not None:
                self.text, reason = self.text[:cut], "stop"
        self.finish_reason = reason
        return self._release(len(self.text))
