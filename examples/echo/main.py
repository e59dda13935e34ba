"""The echo pipeline of ppipe_stream.examples.echo, as a container's main."""

from ppipe_stream.examples.echo import main

main()
