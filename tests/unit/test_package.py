"""The package's public surface."""

import ppipe_stream


def test_all_names_exist():
    for name in ppipe_stream.__all__:
        assert hasattr(ppipe_stream, name), name
    assert issubclass(ppipe_stream.ScenarioError, ppipe_stream.PpipeError)
