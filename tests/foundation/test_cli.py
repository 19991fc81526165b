"""The codemill CLI: every subcommand documents its flags; bad input is one clear line."""

import argparse

import pytest

from codemill import cli


def _subcommands():
    parser = cli.build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return parser, action.choices


def _walk(parser, path):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, path + [name])
        elif action.option_strings and action.dest != "help":
            yield path, action


def test_every_subcommand_has_help_for_every_flag():
    flags = list(_walk(cli.build_parser(), ["codemill"]))
    assert len({tuple(p) for p, _ in flags}) >= 3  # pipeline compile/run/submit at least
    for path, action in flags:
        assert action.help, f"{' '.join(path)} {action.option_strings[0]} has no help"


def test_unknown_pipeline_param_is_named(capsys):
    code = cli.main(["pipeline", "run", "--local", "--workdir", "/tmp/unused", "--param", "no_such_param=1"])
    err = capsys.readouterr().err
    assert code == 2 and "no_such_param" in err and "not a pipeline parameter" in err
    assert "Traceback" not in err


def test_help_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    assert "pipeline" in capsys.readouterr().out


def test_every_command_accepts_no_tracking():
    leaves = list(cli._leaf_parsers(cli.build_parser()))
    assert len(leaves) >= 10  # the stages, inspect, rollout and the pipeline actions
    for leaf in leaves:
        assert "--no-tracking" in leaf._option_string_actions, leaf.prog
