"""``kavier.driver``: the pipeline's results do not depend on how the workload is chunked."""

from tests.runs import thesis_requests, thesis_simulate


def test_chunking_does_not_change_results():
    a = thesis_simulate(requests=thesis_requests(200), flush_size=7, prefix_len=0)
    b = thesis_simulate(requests=thesis_requests(200), flush_size=1000, prefix_len=0)
    assert a.requests.equals(b.requests)
    assert a.timeseries.equals(b.timeseries)
