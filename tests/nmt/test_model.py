"""The network: padding never changes a result, attention is a distribution, one shared step."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from nmt.batching import pad_batch, source_ids, target_io
from nmt.model import build_model
from nmt.tokenizer import Tokenizer
from tests.synthetic import tiny_config

VARIANTS = [
    {},
    {"cell": "gru"},
    {"input_feed": False},
    {"bridge": "zero"},
    {"tie_target_embeddings": True, "share_embeddings": True},
    {"enc_layers": 1, "dec_layers": 3, "enc_hidden": 24},  # bridge repeats the top layer; no memory projection
]

SENTENCES = ["a b c", "l k j i h g f e d c b a", "d e", "f"]


def _batch(tokenizer: Tokenizer, texts: list[str]) -> tuple[torch.Tensor, ...]:
    ids = tokenizer.encode_src(texts)
    src, src_len = pad_batch([source_ids(s) for s in ids], "cpu")
    tgt_in, _ = pad_batch([target_io(s)[0] for s in ids], "cpu")
    return src, src_len, tgt_in


def _teacher_forced(tokenizer: Tokenizer, variant: dict[str, object], seed: int) -> tuple[Any, Any, Any]:
    """A seeded tiny model of `variant`, its encoder state of SENTENCES and its decoder's (logits, attention)."""
    torch.manual_seed(seed)
    model = build_model(tiny_config(tokenizer.src_vocab_size, **variant)).eval()
    src, src_len, tgt_in = _batch(tokenizer, SENTENCES)
    with torch.no_grad():
        state = model.encode(src, src_len)
        return model, state, model.decoder(state, tgt_in)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) or "reference")
def test_padding_never_changes_encoder_or_decoder(tokenizer: Tokenizer, variant: dict[str, object]) -> None:
    model, batch_state, (batch_logits, batch_attn) = _teacher_forced(tokenizer, variant, seed=0)
    with torch.no_grad():
        for i, text in enumerate(SENTENCES):
            s, s_len, t_in = _batch(tokenizer, [text])
            alone = model.encode(s, s_len)
            n, m = int(s_len[0]), t_in.size(1)
            assert batch_state.grid is not None and alone.grid is not None  # inference attends over the grid
            batch_memory = batch_state.grid.values[i, :n] * batch_state.grid.scale[i]
            alone_memory = alone.grid.values[0] * alone.grid.scale[0]
            torch.testing.assert_close(batch_memory, alone_memory, atol=1e-5, rtol=0)
            alone_logits, _ = model.decoder(alone, t_in)
            torch.testing.assert_close(
                torch.log_softmax(batch_logits[i, :m], -1), torch.log_softmax(alone_logits[0], -1), atol=1e-5, rtol=0
            )
            # encoder outputs on padding positions are exactly zero and never attended to
            assert torch.all(batch_attn[i, :, n:] == 0)
    sums = batch_attn.sum(-1)
    torch.testing.assert_close(sums, torch.ones_like(sums))


@pytest.mark.parametrize("variant", VARIANTS[:3], ids=["reference", "gru", "no-input-feed"])
def test_step_function_equals_teacher_forcing(tokenizer: Tokenizer, variant: dict[str, object]) -> None:
    """Search and training share the recurrence: stepping token by token gives the forward pass."""
    model, state, (logits, attn) = _teacher_forced(tokenizer, variant, seed=1)
    tgt_in = _batch(tokenizer, SENTENCES)[2]
    with torch.no_grad():
        for t in range(tgt_in.size(1)):
            log_probs, state, step_attn = model.step(state, tgt_in[:, t])
            torch.testing.assert_close(log_probs, torch.log_softmax(logits[:, t], -1), atol=1e-5, rtol=0)
            torch.testing.assert_close(step_attn, attn[:, t], atol=1e-6, rtol=0)


def test_decoder_state_select_reorders_rows(tokenizer: Tokenizer) -> None:
    torch.manual_seed(2)
    model = build_model(tiny_config(tokenizer.src_vocab_size)).eval()
    src, src_len, _ = _batch(tokenizer, SENTENCES)
    with torch.no_grad():
        state = model.encode(src, src_len)
        index = torch.tensor([2, 0])
        picked = state.select(index)
        prev = torch.tensor([5, 6])
        lp_picked, _, _ = model.step(picked, prev)
        lp_all, _, _ = model.step(state, torch.tensor([6, 0, 5, 0]))
    torch.testing.assert_close(lp_picked, lp_all[index], atol=1e-6, rtol=0)


def test_tied_embeddings_share_one_tensor(tokenizer: Tokenizer) -> None:
    model = build_model(tiny_config(tokenizer.src_vocab_size, tie_target_embeddings=True, share_embeddings=True))
    assert model.decoder.generator.weight is model.decoder.embedding.weight
    assert model.encoder.embedding.weight is model.decoder.embedding.weight
    assert model.decoder.out_proj is not None  # emb 16 != hidden 24


def test_invalid_architecture_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"model\.dropout"):
        tiny_config(30, dropout=1.5)
    with pytest.raises(ValueError, match=r"model\.cell"):
        tiny_config(30, cell="transformer")
