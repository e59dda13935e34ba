"""The proctor's inbox: replies reach the judge through a bounded stream that never
fills, and nothing the judge would take is dropped."""

from ppipe_stream import protocol
from ppipe_stream.proctor.inbox import ReplyInbox
from ppipe_stream.scoring.scorer import ReplyRecord


class _Sent:
    """Commands c0 and c1 went to pipelines p and q."""

    def expects(self, command_id: str, pipeline: str) -> bool:
        return command_id in ("c0", "c1") and pipeline in ("p", "q")


def _reply(command_id: str, pipeline: str, read_ns: int = 1) -> ReplyRecord:
    return ReplyRecord(pipeline, protocol.Reply(command_id=command_id, status="ok"), read_ns)


def test_a_flood_of_stray_and_repeated_replies_never_fills_the_stream():
    judged_at_once: list[ReplyRecord] = []
    inbox = ReplyInbox(_Sent(), bound=4, overflow=judged_at_once.append)  # 2 commands x 2 pipelines
    for n in range(1000):
        inbox.offer(_reply(f"x{n}", "p"))  # unknown commands
        inbox.offer(_reply("c0", "r"))  # a pipeline it was not sent to
    for pipeline in ("p", "q"):
        for command_id in ("c0", "c1"):
            for read_ns in (1, 2, 3):  # replicas answer too: the first counts
                inbox.offer(_reply(command_id, pipeline, read_ns))
    taken = inbox.take_all()
    inbox.close()
    assert sorted((r.reply.command_id, r.pipeline) for r in taken) == [
        ("c0", "p"), ("c0", "q"), ("c1", "p"), ("c1", "q")]
    assert all(r.read_ns == 1 for r in taken)
    assert judged_at_once == [] and inbox.accepted == 4 and inbox.ignored == 2000 + 8
