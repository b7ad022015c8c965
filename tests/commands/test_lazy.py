"""``kavier.commands.lazy``: the group help and other commands never build the run options."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.cli_helper import SRC


def test_the_group_help_and_other_commands_do_not_build_the_scenario_options():
    code = (
        "import sys\nfrom kavier import cli\n"
        "for argv in (['kavier', '--help'], ['kavier', 'compare', '--help']):\n"
        "    sys.argv = argv\n"
        "    try:\n        cli.main()\n    except SystemExit:\n        pass\n"
        "print('kavier.scenario' in sys.modules, file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stderr.strip() == "False"
    assert "run" in done.stdout and "plan" in done.stdout
