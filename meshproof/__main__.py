"""`python -m meshproof` is the `meshproof` command."""

from meshproof.cli import main

main()
