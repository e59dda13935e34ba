"""ppipe_stream.examples.sklearn_retrain as a container's main."""

from ppipe_stream.examples.sklearn_retrain import main

main()
