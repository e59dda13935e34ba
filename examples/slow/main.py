"""ppipe_stream.examples.slow as a container's main."""

from ppipe_stream.examples.slow import main

main()
