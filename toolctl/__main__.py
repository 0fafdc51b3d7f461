# Guarded: a worker process the collector spawns (``toolctl serve --decode-workers``) imports
# the parent's main module under another name, and must not run the CLI again.
if __name__ == "__main__":
    from toolctl.cli import run

    run()
