"""The hostile pipeline of ppipe_stream.examples.hostile, as a container's main."""

from ppipe_stream.examples.hostile import main

main()
