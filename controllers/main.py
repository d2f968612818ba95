"""`kubelite scheduler` and `kubelite controller-manager`: argv[0] names which.

Only dispatch lives here. The controller-manager's module is imported when (and only
when) it is asked for, so the scheduler runs in a build that does not have it yet.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

EXIT_USAGE = 2
MANAGER_MODULE = "controllers.manager"


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if not args or args[0] not in ("scheduler", "controller-manager"):
        print("usage: controllers.main {scheduler|controller-manager} [args...]",
              file=sys.stderr)
        return EXIT_USAGE
    if args[0] == "scheduler":
        from controllers import scheduler_runner
        return scheduler_runner.main(args[1:])
    try:
        manager = importlib.import_module(MANAGER_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != MANAGER_MODULE:
            raise  # a module the manager imports is missing: a real error
        print(f"kubelite controller-manager: not available in this build "
              f"({MANAGER_MODULE} does not exist yet)", file=sys.stderr)
        return EXIT_USAGE
    return int(manager.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
