"""Click commands kept outside ``cli.py``; ``cli.py`` registers them with ``main.add_command``."""
