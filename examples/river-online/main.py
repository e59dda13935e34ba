"""The river online model of ppipe_stream.examples.river_online, as a container's main."""

from ppipe_stream.examples.river_online import main

main()
