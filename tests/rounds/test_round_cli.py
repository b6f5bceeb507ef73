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
