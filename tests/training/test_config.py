"""Training config: bad files, keys and values fail before any work, naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.cli import main
from training.config import ConfigError, apply_override, load_config

REFERENCE = Path(__file__).resolve().parents[2] / "configs" / "multi30k_de_en.yaml"


def test_reference_recipe_is_valid_and_matches_the_reference_architecture() -> None:
    config = load_config(REFERENCE)
    m = config.model
    assert (m.emb_size, m.enc_hidden, m.enc_layers, m.dec_hidden, m.dec_layers) == (256, 256, 2, 512, 2)
    assert (m.cell, m.input_feed, m.dropout) == ("lstm", True, 0.3)
    assert config.tokenizer.joint and config.tokenizer.vocab_size == 8000
    assert config.train.label_smoothing == 0.1
    assert str(config.data.train_src).endswith("multi30k/train.de")


@pytest.mark.parametrize("pair", ["en_de", "en_fr", "fr_en", "en_cs", "cs_en"])
def test_direction_recipes_are_the_reference_with_their_own_data(pair: str) -> None:
    config = load_config(REFERENCE.with_name(f"multi30k_{pair}.yaml"))
    source, target = pair.split("_")
    assert (config.data.src_lang, config.data.tgt_lang) == (source, target)
    assert str(config.data.train_src).endswith(f"train.{source}") and str(config.data.valid_tgt).endswith(
        f"val.{target}"
    )
    assert config.model == load_config(REFERENCE).model and config.train.out_dir == Path(f"runs/multi30k_{pair}")


def test_a_base_recipe_is_read_first_and_overridden(tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text(f"base: {REFERENCE}\ntrain:\n  max_steps: 7\n", encoding="utf-8")
    config = load_config(tmp_path / "child.yaml", ["train.lr=0.5"])
    assert (config.train.max_steps, config.train.lr, config.train.label_smoothing) == (7, 0.5, 0.1)
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="names itself as a base"):
        load_config(tmp_path / "loop.yaml")
    (tmp_path / "lost.yaml").write_text("base: nowhere.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"nowhere\.yaml does not exist"):
        load_config(tmp_path / "lost.yaml")


def test_overrides_use_dotted_keys_and_yaml_values() -> None:
    config = load_config(
        REFERENCE,
        ["train.max_steps=200", "data.train_src=/x/y.de", "model.input_feed=false", "train.adam_betas=[0.8, 0.9]"],
    )
    assert config.train.max_steps == 200
    assert config.data.train_src == Path("/x/y.de")
    assert config.model.input_feed is False
    assert config.train.adam_betas == (0.8, 0.9)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("train.batch_tokens=-5", "train.batch_tokens"),
        ("train.bogus=1", "train.bogus: unknown key"),
        ("model.cell=transformer", "model.cell"),
        ("train.schedule=cosine", "train.schedule"),
        ("data.valid_tgt=null", "data: Value error, valid_src and valid_tgt must be given together"),
        ("nonsense=3", "nonsense: unknown key"),
    ],
)
def test_bad_values_name_the_field(override: str, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config(REFERENCE, [override])


def test_malformed_override_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"dotted\.key=value"):
        apply_override({}, "train.max_steps")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n- not sections\n")
    with pytest.raises(ConfigError, match="mapping of sections"):
        load_config(bad)


def test_cli_reports_config_errors_in_one_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never"
    status = main(["--config", str(REFERENCE), "train.lr=-1", f"train.out_dir={out}"])
    err = capsys.readouterr().err
    assert status == 2
    assert "train.lr" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()  # nothing was done


def _data_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], src: Path, tgt: Path) -> str:
    out = tmp_path / "run"
    code = main(["--config", str(REFERENCE), f"data.train_src={src}", f"data.train_tgt={tgt}",
                 f"data.valid_src={tgt}", f"data.valid_tgt={tgt}", f"train.out_dir={out}"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (out / "spm.model").exists()  # reported before sentencepiece spent any time
    return err


def test_missing_or_unparallel_data_is_one_line_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two, one = tmp_path / "two.txt", tmp_path / "one.txt"
    two.write_text("a b\nc d\n")
    one.write_text("x\n")
    assert "missing.de: no such file" in _data_errors(tmp_path, capsys, tmp_path / "missing.de", one)
    assert "has 2 lines but" in _data_errors(tmp_path, capsys, two, one)


CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_is_valid_and_trains_the_pair_it_names(path: Path) -> None:
    from training.corpus import load_corpus_config

    if path.name.startswith("corpus_"):
        corpus = load_corpus_config(path)
        first, second = path.stem.split("_")[1:]
        assert tuple(corpus.languages) == (first, second) and corpus.out_dir.name == f"{first}-{second}"
        return
    config = load_config(path)
    source, target = path.stem.split("_")[-2:]
    assert config.data.train_src.suffix == f".{source}" and config.data.train_tgt.suffix == f".{target}"
