from toolctl.cli import run

run()
