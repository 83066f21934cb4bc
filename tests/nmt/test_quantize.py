"""int8 inference: close to fp32, bitwise the same for a sentence alone or in any batch, on every layer."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from nmt.errors import InputError
from nmt.layers import StepBiLSTM, StepLSTM, exact_linear
from nmt.model import Seq2Seq, build_model
from nmt.model_dir import pack_int8, unpack_int8
from nmt.precision import FLOAT_LAYERS, auto_precision, convert, prepare, resolve_precision
from nmt.quantize import CodedEmbedding, Int8Linear, int8_kernels
from nmt.search import SearchOptions
from nmt.tokenizer import Tokenizer
from nmt.translator import Translator
from tests.cpu import cpu_description
from tests.synthetic import SYMBOLS, tiny_config
from training.trainer import TrainResult


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(SYMBOLS) for _ in range(rng.randint(1, 12))) for _ in range(n)]


@pytest.mark.parametrize("per_row", [False, True])
def test_int8_linear_is_close_to_fp32_and_rows_do_not_depend_on_each_other(per_row: bool) -> None:
    torch.manual_seed(0)
    linear = nn.Linear(64, 48)
    x = torch.rand(37, 64) * 2 - 1  # in [-1, 1]
    if per_row:
        x = x * torch.linspace(0.01, 20, 37).unsqueeze(1)  # rows of very different ranges
    quantized = Int8Linear(linear.weight, linear.bias, None if per_row else torch.ones(64))
    with torch.no_grad():
        expected, got = linear(x), quantized(x)
    assert (got - expected).abs().max() <= 0.03 * expected.abs().max()
    alone = torch.cat([quantized(x[i : i + 1]) for i in range(x.size(0))])
    assert torch.equal(alone, got), f"rows depend on their batch on {cpu_description()}"


@pytest.mark.parametrize(("per_row", "bias"), [(False, True), (True, True), (True, False)])
@pytest.mark.parametrize("kernels", ["fbgemm", "onednn"])
def test_int8_outputs_read_at_a_shortlist_are_the_bits_of_the_whole_output(
    per_row: bool, bias: bool, kernels: str
) -> None:
    """A generator over the whole vocabulary scales only the columns each sentence reads: same bits as all of them."""
    if kernels not in int8_kernels():
        pytest.skip(f"this PyTorch has no {kernels} int8 kernel")
    torch.manual_seed(0)
    linear = nn.Linear(64, 300, bias=bias)
    x = (torch.rand(12 * 5, 64) * 2 - 1) * (torch.linspace(0.01, 20, 60).unsqueeze(1) if per_row else 1)
    layer = Int8Linear(linear.weight, linear.bias, None if per_row else torch.ones(64), kernels=kernels)
    columns = torch.stack([torch.randperm(300)[:40] for _ in range(12)])  # 12 sentences x 5 beams, 40 columns each
    expected = layer(x).view(12, 5, 300).gather(2, columns.unsqueeze(1).expand(-1, 5, -1)).view(60, 40)
    assert torch.equal(layer.forward_at(x, columns), expected), f"on {cpu_description()}"
    assert torch.equal(layer.forward_at(x[:5], columns[:1]), expected[:5])  # one sentence alone


@pytest.mark.parametrize("kernels", ["fbgemm", "onednn"])
def test_a_layer_restricted_to_some_outputs_gets_their_bits_from_the_one_packed_copy(kernels: str) -> None:
    """No float copy of the weights is kept: `select_outputs` unpacks whichever kernel's copy there is."""
    if kernels not in int8_kernels():
        pytest.skip(f"this PyTorch has no {kernels} int8 kernel")
    torch.manual_seed(1)
    linear = nn.Linear(64, 300)
    layer = Int8Linear(linear.weight, linear.bias, torch.ones(64), kernels=kernels)
    assert not any(isinstance(v, torch.Tensor) and v.dtype == torch.float32 and v.numel() >= 64 * 300
                   for v in vars(layer).values())  # fmt: skip
    index = torch.tensor([299, 0, 17, 150])
    x = torch.rand(9, 64) * 2 - 1
    assert torch.equal(layer.select_outputs(index)(x), layer(x)[:, index]), f"on {cpu_description()}"


def test_an_embedding_stored_in_int8_is_held_as_codes_with_the_same_bits_and_a_float_one_is_not() -> None:
    torch.manual_seed(2)
    table = nn.Embedding(50, 16)
    stored = unpack_int8(pack_int8({"w": table.weight.detach()}))["w"]
    coded = CodedEmbedding.of(nn.Embedding.from_pretrained(stored))
    assert coded is not None and coded.codes.dtype == torch.int8
    ids = torch.tensor([[0, 49, 3], [7, 7, 1]])
    assert torch.equal(coded(ids), nn.functional.embedding(ids, stored))
    assert CodedEmbedding.of(table) is None  # fp32 values that are no codes stay a float table


def test_int8_linear_uses_per_column_bounds() -> None:
    torch.manual_seed(0)
    linear = nn.Linear(8, 4)
    bounds = torch.tensor([0.1, 0.1, 0.1, 0.1, 5.0, 5.0, 5.0, 5.0])
    x = (torch.rand(50, 8) * 2 - 1) * bounds
    with torch.no_grad():
        error = (Int8Linear(linear.weight, linear.bias, bounds)(x) - linear(x)).abs().max()
    assert error < 0.05


def test_int8_lstm_follows_nn_lstm() -> None:
    torch.manual_seed(0)
    lstm = nn.LSTM(24, 32, num_layers=2, batch_first=True).eval()
    x = torch.rand(5, 7, 24) * 2 - 1
    state = (torch.rand(2, 5, 32) * 2 - 1, torch.randn(2, 5, 32))
    with torch.no_grad():
        out, (h, c) = lstm(x, state)
        q_out, (q_h, q_c) = StepLSTM(lstm, Int8Linear, torch.ones(24))(x, state)
    assert q_out.shape == out.shape and q_h.shape == h.shape and q_c.shape == c.shape
    assert (q_out - out).abs().max() < 0.03 and (q_c - c).abs().max() < 0.05


def test_int8_encoder_follows_the_encoder_and_ignores_padding(tiny_model: Seq2Seq) -> None:
    encoder = tiny_model.encoder
    quantized = StepBiLSTM(encoder.rnn, Int8Linear, encoder.input_ranges()["rnn"].bounds)  # type: ignore[arg-type]
    src = torch.tensor([[5, 6, 7, 8, 9], [10, 11, 12, 0, 0], [13, 0, 0, 0, 0]])
    lengths = torch.tensor([5, 3, 1])
    with torch.no_grad():
        out, (h, c) = encoder(src, lengths)
        q_out, (q_h, q_c) = quantized(encoder.embedding(src), lengths)
        assert (q_out - out).abs().max() < 0.03 and (q_h - h).abs().max() < 0.03 and (q_c - c).abs().max() < 0.05
        assert (q_out[1, 3:] == 0).all() and (q_out[2, 1:] == 0).all()
        for i in range(3):
            n = int(lengths[i])
            a_out, (a_h, a_c) = quantized(encoder.embedding(src[i : i + 1, :n]), lengths[i : i + 1])
            assert torch.equal(a_out[0], q_out[i, :n]), f"sentence {i} on {cpu_description()}"
            assert torch.equal(a_h[:, 0], q_h[:, i]) and torch.equal(a_c[:, 0], q_c[:, i])


@pytest.mark.parametrize("rows", [1, 3, 50])
def test_int8_encoder_directions_together_or_apart_give_the_same_bits(
    rows: int, tiny_model: Seq2Seq, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small batches step both directions as one block-diagonal product, large ones each apart: one result."""
    encoder = tiny_model.encoder
    quantized = StepBiLSTM(encoder.rnn, Int8Linear, encoder.input_ranges()["rnn"].bounds)  # type: ignore[arg-type]
    generator = torch.Generator().manual_seed(rows)
    lengths = torch.randint(1, 9, (rows,), generator=generator)
    src = torch.randint(4, encoder.embedding.num_embeddings, (rows, int(lengths.max())), generator=generator)
    src[torch.arange(src.size(1)).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    results = []
    with torch.no_grad():
        for fused_rows in (0, 10_000):
            monkeypatch.setattr(StepBiLSTM, "FUSED_ROWS", fused_rows)
            out, (h, c) = quantized(encoder.embedding(src), lengths)
            results.append((out, h, c))
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b), f"{rows} rows on {cpu_description()}"


@pytest.mark.parametrize("beam", [1, 3, 5])
def test_int8_translations_are_bitwise_batch_invariant(
    beam: int, reverse_model: TrainResult, tiny_model: Seq2Seq, tokenizer: Tokenizer
) -> None:
    """Unlike dynamic quantisation (scales per batch), a sentence's int8 result ignores its batch."""
    trained = Translator.from_dir(reverse_model.model_dir, device="cpu", precision="int8")
    for translator in (trained, Translator(prepare(tiny_model, "int8"), tokenizer)):
        texts = _texts(24, seed=beam)
        options = SearchOptions(beam_size=beam)
        alone = [translator.translate([t], options)[0] for t in texts]
        for budget in (10_000, 64, 16):
            together = translator.translate(texts, options, batch_tokens=budget)
            got, want = [(t.text, t.score) for t in together], [(t.text, t.score) for t in alone]
            assert got == want, f"budget {budget} changes answers on {cpu_description()}"


def test_the_lean_footprint_is_batch_invariant_and_keeps_the_answers(reverse_model: TrainResult) -> None:
    """Lean (one packed copy, no token table) answers as fast does, and the same alone or in any batch."""
    fast = Translator.from_dir(reverse_model.model_dir, device="cpu", precision="int8")
    lean = Translator.from_dir(reverse_model.model_dir, device="cpu", precision="int8", footprint="lean")
    assert lean.model.decoder.rnn.token_gates is None and fast.model.decoder.rnn.token_gates is not None
    texts = _texts(24, seed=7)
    options = SearchOptions(beam_size=3)
    alone = [lean.translate([t], options)[0] for t in texts]
    for budget in (10_000, 32):
        together = lean.translate(texts, options, batch_tokens=budget)
        assert [(t.text, t.score) for t in together] == [(t.text, t.score) for t in alone], f"on {cpu_description()}"
    assert [t.text for t in alone] == [t.text for t in fast.translate(texts, options)]


def test_int8_keeps_the_trained_models_answers(reverse_model: TrainResult) -> None:
    fp32 = Translator.from_dir(reverse_model.model_dir, device="cpu")
    int8 = Translator.from_dir(reverse_model.model_dir, device="cpu", precision="int8")
    texts = _texts(40, seed=11)
    expected = fp32.translate(texts)
    got = int8.translate(texts)
    assert sum(g.text == e.text for g, e in zip(got, expected, strict=True)) >= 38
    assert [g.score for g in got] == pytest.approx([e.score for e in expected], abs=0.05)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"input_feed": False, "bridge": "zero"},
        {"tie_target_embeddings": True, "share_embeddings": True},
        {"enc_hidden": 12, "dec_hidden": 20},  # memory projected to the decoder width
    ],
)
@pytest.mark.parametrize("token_table", [True, False])
def test_int8_covers_every_architecture_option(
    change: dict[str, object], token_table: bool, tokenizer: Tokenizer
) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config(tokenizer.src_vocab_size, **change)).eval()
    fp32 = Translator(model, tokenizer).translate(["a b c", "d e"])
    int8 = Translator(prepare(model, "int8", token_table=token_table), tokenizer).translate(["a b c", "d e"])
    assert [t.score for t in int8] == pytest.approx([t.score for t in fp32], abs=0.1)


def test_every_layer_that_runs_is_int8(tiny_model: Seq2Seq, tokenizer: Tokenizer) -> None:
    """No linear or recurrent layer stays in float: every module that multiplies during a search is int8's."""
    model = prepare(tiny_model, "int8")
    assert not [name for name, m in model.named_modules() if isinstance(m, FLOAT_LAYERS)]
    ran: set[str] = set()
    for name, module in model.named_modules():
        module.register_forward_hook(lambda m, i, o, name=name: ran.add(name))
    Translator(model, tokenizer).translate(["a b c", "d e f g"], SearchOptions(beam_size=3))
    # the encoder steps its directions apart from StepBiLSTM.FUSED_ROWS sentences: those layers run then
    Translator(model, tokenizer).translate(["a b c"] * StepBiLSTM.FUSED_ROWS, SearchOptions(beam_size=1))
    kinds = {type(m).__name__ for name, m in model.named_modules() if name in ran}
    assert kinds <= {"Seq2Seq", "Bridge", "Encoder", "Decoder", "Embedding", "Dropout", "Int8Linear", "StepLSTM",
                     "StepBiLSTM"}, kinds  # fmt: skip
    int8_layers = {name for name, m in model.named_modules() if isinstance(m, Int8Linear)}
    assert int8_layers and int8_layers <= ran  # every converted layer did the work


def test_a_layer_nobody_declared_cannot_silently_stay_fp32(tiny_model: Seq2Seq) -> None:
    tiny_model.decoder.extra = nn.Linear(4, 4)  # a layer added later, without an input range
    with pytest.raises(TypeError, match=r"decoder\.extra"):
        convert(tiny_model, Int8Linear)


def test_auto_precision_is_int8_on_x86_and_int8_refuses_what_it_cannot_run(tokenizer: Tokenizer) -> None:
    config = tiny_config(tokenizer.src_vocab_size)
    cpu = torch.device("cpu")
    assert auto_precision(cpu, config) == ("int8" if int8_kernels() else "fp32")
    gru = tiny_config(tokenizer.src_vocab_size, cell="gru")
    assert auto_precision(cpu, gru) == "fp32"
    with pytest.raises(InputError, match="LSTM"):
        resolve_precision("int8", cpu, gru)
    with pytest.raises(InputError, match="needs a CUDA device"):
        resolve_precision("bf16", cpu, config)
    with pytest.raises(InputError, match="unknown precision"):
        resolve_precision("int4", cpu, config)


@pytest.mark.skipif("onednn" not in int8_kernels(), reason="this PyTorch has no oneDNN int8 kernel")
def test_fbgemm_and_onednn_give_the_same_bits_at_every_batch_size() -> None:
    torch.manual_seed(0)
    linear = nn.Linear(96, 200)
    x = torch.rand(70, 96) * 2 - 1
    fbgemm = Int8Linear(linear.weight, linear.bias, torch.ones(96), kernels="fbgemm")
    onednn = Int8Linear(linear.weight, linear.bias, torch.ones(96), kernels="onednn")
    for rows in (1, 5, 31, 32, 33, 70):
        assert torch.equal(fbgemm(x[:rows]), onednn(x[:rows])), f"{rows} rows on {cpu_description()}"
    auto = Int8Linear(linear.weight, linear.bias, torch.ones(96))
    assert torch.equal(auto(x), fbgemm(x)) and torch.equal(auto(x[:3]), fbgemm(x[:3]))


def test_the_token_table_is_the_same_bits_whatever_the_memory_layout() -> None:
    """Computed once per process: BLAS fp32 could round it differently in another process, exact_linear cannot."""
    torch.manual_seed(0)
    x, weight, bias = torch.randn(301, 64), torch.randn(96, 64) * 0.05, torch.randn(96)
    table = exact_linear(x, weight, bias)
    reference = torch.nn.functional.linear(x.double(), weight.double(), bias.double())
    assert (table.double() - reference).abs().max() < 1e-5
    shifted = torch.cat([torch.zeros(1, 64), x])[1:]  # the same values at another address
    assert torch.equal(exact_linear(shifted, weight, bias), table)
    assert torch.equal(exact_linear(x[5:9], weight, bias), table[5:9])
