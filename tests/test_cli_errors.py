"""The CLIs keep their promises: --version, every default in `run --help`, config files read strictly,
and user mistakes that exit 2 with one line."""

import signal
import subprocess
import time

import pytest
import typer

from codo_aug.errors import InputError
from codo_aug.version import __version__
from codo_cli.common import exit_codes, fail
from codo_train.config import TrainConfig

from .helpers import BIN, cli


def assert_one_line(proc, code: int, start: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code and len(lines) == 1, proc.stderr
    assert lines[0].startswith(start), lines[0]


@pytest.mark.parametrize("prog", ["codo-aug", "codo-train"])
def test_version(prog):
    proc = cli(prog, "--version")
    assert proc.returncode == 0 and proc.stdout == f"{prog} {__version__}\n"


def test_run_help_shows_every_default_of_train_config():
    shown = cli("codo-train", "run", "--help", env={"COLUMNS": "300"}).stdout
    for default in ("1000", "resnet50", "cpu", "32", "1", "lars", "1.0", "codo", "none", "no-channels-last",
                    "0", "100"):
        assert f"[default: {default}]" in shown, default
    assert "online: [synth] photometric" in shown  # escaped: rich would take [synth] for markup


@pytest.mark.parametrize("args, start", [
    ((), "codo-train: error: invalid steps=0"),  # the file's value, not --steps' default shown in --help
    (("--steps", "5"), "codo-train: error: no shards match"),  # an option given wins over the file
])
def test_defaults_shown_in_help_do_not_override_the_config_file(tmp_path, args, start):
    conf = tmp_path / "run.toml"
    conf.write_text("steps = 0\n")  # a file of plain settings, no sections
    proc = cli("codo-train", "run", "--config", str(conf), "--shards", str(tmp_path / "none"),
               "--out", str(tmp_path / "r"), *args)
    assert_one_line(proc, 2, start)


@pytest.mark.parametrize("args", [("codo-aug", "synth"), ("codo-train", "run")])
def test_an_unknown_config_section_is_refused_naming_the_known_ones(tmp_path, args):
    conf = tmp_path / "c.toml"
    conf.write_text("[synth]\nflip_p = 0.5\n[trian]\nsteps = 3\n")
    proc = cli(*args, "--config", str(conf), "--out", str(tmp_path / "o"))
    assert_one_line(proc, 2, f"{args[0]}: error: --config {conf}: unknown section(s) [trian] "
                             "(known: [synth] or [train])")


def test_settings_outside_the_sections_of_a_file_with_sections_are_refused(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text("steps = 3\n[synth]\nflip_p = 0.5\n")
    proc = cli("codo-aug", "synth", "--config", str(conf), "--out", str(tmp_path / "o"))
    assert_one_line(proc, 2, f"codo-aug: error: --config {conf}: setting(s) outside any section (steps)")


def test_fail_prints_a_message_with_line_breaks_on_one_line(capsys):
    with pytest.raises(typer.Exit) as exit_info:
        fail("codo-train", "bad file (UnpicklingError: load failed.\n\nUnsupported operand 149)", 2)
    assert exit_info.value.exit_code == 2
    err = capsys.readouterr().err
    assert err == "codo-train: error: bad file (UnpicklingError: load failed. Unsupported operand 149)\n"


@pytest.mark.parametrize("settings, message", [
    ({"out": "o"}, "no training data: give --shards (shards = ... in a config file), or --instances and "
                   "--backgrounds for online synthesis"),
    ({"out": "o", "shards": "s", "instances": "sample"},
     "--shards and --instances/--backgrounds are both given: train on shards or synthesise online, not both"),
    ({"out": "o", "backgrounds": "sample"},
     "online synthesis needs --instances too (only --backgrounds is given)"),
    ({"shards": "s"}, "no run folder: give --out DIR (out = ... in a config file)"),
])
def test_a_run_without_its_data_or_folder_says_which_option_is_missing(settings, message):
    with pytest.raises(InputError) as err:
        TrainConfig(**settings)
    assert str(err.value) == message


@pytest.mark.parametrize("args, start", [
    (("codo-aug", "synth", "--num-samples", "many"),
     "codo-aug synth: error: Invalid value for '--num-samples'"),
    (("codo-aug", "synth", "--bogus"), "codo-aug synth: error: No such option: --bogus"),
    (("codo-aug", "stats"), "codo-aug stats: error: Missing argument 'folder' (try 'codo-aug stats --help')"),
    (("codo-train", "shrink"), "codo-train: error: No such command 'shrink' (try 'codo-train --help')"),
    (("codo-aug", "preview", "--out"),  # click raises this one without the subcommand's context
     "codo-aug preview: error: Option '--out' requires an argument (try 'codo-aug preview --help')"),
    (("codo-train", "run", "--steps", "1.5"), "codo-train run: error: Invalid value for '--steps'"),
])
def test_command_line_mistakes_are_one_line_with_exit_2_not_a_box(args, start):
    assert_one_line(cli(*args), 2, start)


def into_closed_pipe(*args: str) -> tuple[int, str]:
    """(exit code, stderr) of a CLI whose stdout's reader is gone before it writes ('... | head -1')."""
    proc = subprocess.Popen([str(BIN / args[0]), *args[1:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    proc.stdout.close()  # before the child writes: its write meets a closed pipe
    _, err = proc.communicate(timeout=900)
    return proc.returncode, err


def test_help_into_a_closed_pipe_exits_1_without_a_traceback():
    """`codo-aug synth --help | head -3`: the reader is gone before the help is written."""
    assert into_closed_pipe("codo-aug", "synth", "--help") == (1, "")


@pytest.mark.parametrize("args", [("codo-aug", "stats", "--json"), ("codo-aug", "stats"),
                                  ("codo-train", "--version")])
def test_results_into_a_closed_pipe_exit_1_quietly(sample_shards, args):
    """`codo-aug stats DIR --json | head -1` (it said 'error: [Errno 32] Broken pipe'): as --help."""
    folder = (str(sample_shards),) if "stats" in args else ()
    assert into_closed_pipe(*args[:2], *folder, *args[2:]) == (1, "")


@pytest.mark.slow
def test_probe_json_into_a_closed_pipe_exits_1_quietly(tmp_path):
    import torch

    from codo_train.models.codo import CoDoModel

    torch.save({"step": 1, "config": {"arch": "resnet18"}, "model": CoDoModel("resnet18").state_dict()},
               tmp_path / "last.pt")
    assert into_closed_pipe("codo-train", "probe", str(tmp_path / "last.pt"), "--instances", "sample",
                            "--backgrounds", "sample", "--num-instances", "2", "--json") == (1, "")


def test_a_broken_pipe_that_is_not_stdout_or_stderr_is_still_an_error(capsys):
    with pytest.raises(typer.Exit) as exit_info, exit_codes("codo-aug"):
        raise BrokenPipeError(32, "Broken pipe")  # e.g. a socket: stdout and stderr are fine
    assert exit_info.value.exit_code == 1
    assert capsys.readouterr().err == "codo-aug: error: [Errno 32] Broken pipe\n"


@pytest.mark.parametrize("resume, line", [
    ("from the last checkpoint",
     "interrupted; run the same command again to resume (from the last checkpoint)"),
    ("", "interrupted"),  # a command that has nothing to resume
])
def test_interrupted_says_how_to_resume(capsys, resume, line):
    with pytest.raises(typer.Exit) as exit_info, exit_codes("codo-train", resume):
        raise KeyboardInterrupt
    assert exit_info.value.exit_code == 130 and capsys.readouterr().err == f"codo-train: error: {line}\n"


def test_ctrl_c_during_synth_says_to_run_the_same_command_again(tmp_path):
    out = tmp_path / "s"
    # pytest-xdist's workers ignore SIGINT and a child inherits that (Python then installs no handler for
    # it): the child starts with the default disposition, as from a terminal
    proc = subprocess.Popen([str(BIN / "codo-aug"), "synth", "--out", str(out), "--num-samples", "5000",
                             "--shard-size", "10"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    while proc.poll() is None and not (out / "_job.json").exists():  # the job has started
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 130, err
    assert err.splitlines()[-1] == ("codo-aug: error: interrupted; run the same command again to resume "
                                    "(finished shards are kept)")


def test_a_bare_command_shows_its_help():
    proc = cli("codo-train")
    assert proc.returncode == 2 and "Usage: codo-train" in proc.stdout + proc.stderr
    assert "error" not in proc.stderr
