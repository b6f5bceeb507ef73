"""``audiomill round run`` checks its tokenizer before any round starts."""

from typer.testing import CliRunner

from audiomill.cli import round as round_cli


def test_a_wrong_tokenizer_is_a_clear_usage_error_before_ray_starts(tmp_path):
    dataset, not_a_tokenizer = tmp_path / "dataset", tmp_path / "empty"
    dataset.mkdir()
    not_a_tokenizer.mkdir()
    for value, says in ((str(not_a_tokenizer), "is not a tokenizer"), (str(tmp_path / "gone"), "does not exist"),
                        ("speech-tokens@production", "speech-tokens")):
        result = CliRunner().invoke(round_cli.app, ["run", str(dataset), "--tokenizer", value,
                                                    "--registry", str(tmp_path / "registry")])
        assert result.exit_code == 2, result.output
        said = " ".join(result.output.split())  # the console wraps long lines
        assert says in said and "tokenizer" in said
    assert not (dataset / "labels").exists()  # nothing was started


def test_speak_generates_tokens_and_decodes_them_with_the_generators_tokenizer(tmp_path):
    import soundfile as sf
    import torch

    from audiomill.models.generation import token_model as tm
    from audiomill.models.generation.token_training import vocabulary
    from audiomill.models.tokenizer import SemanticTokenizer
    from audiomill.rounds import seed
    from audiomill.testing.tokenizers import codebook_tokenizer

    tokenizer = codebook_tokenizer(tmp_path / "tok", [c.audio for c in seed.generated_set(3, 5)], 8)
    version = SemanticTokenizer.load(str(tokenizer)).version
    torch.manual_seed(0)
    shape = tm.GeneratorShape(vocabulary([["f", "r", "V", "n", "t"]]), 8, hidden=16)
    tm.TokenGenerator(tm.TokenGeneratorNet(shape), version).save(tmp_path / "gen")
    base = ["speak", "Front center", "--generator", str(tmp_path / "gen"), "--tokenizer", str(tokenizer)]
    ok = CliRunner().invoke(round_cli.app, [*base, "--out", str(tmp_path / "say.wav"), "--profile",
                                            "ann_gender=female"])
    assert ok.exit_code == 0, ok.output
    audio, rate = sf.read(tmp_path / "say.wav")
    tokens = int(ok.output.split(" from ")[1].split()[0])
    assert rate == 16_000 and tokens > 0 and abs(audio.size - tokens * 640) <= 640  # 25 tokens/s
    for extra, says in ((["--profile", "ann_gender=robot"], "expected one of"),
                        (["--profile", "gender"], "FIELD=VALUE"), (["--language", "xx-nope"], "nothing to speak")):
        bad = CliRunner().invoke(round_cli.app, [*base, "--out", str(tmp_path / "bad.wav"), *extra])
        assert bad.exit_code == 2 and says in " ".join(bad.output.split()), bad.output
    other = codebook_tokenizer(tmp_path / "other", [c.audio for c in seed.generated_set(3, 6)], 8)
    wrong = CliRunner().invoke(round_cli.app, [*base[:-1], str(other), "--out", str(tmp_path / "bad.wav")])
    assert wrong.exit_code == 2 and "speaks the tokens of" in " ".join(wrong.output.split())
