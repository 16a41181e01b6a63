"""python/bench_cpu_passes.py on the small SmolLM2 checkpoint: both passes run both ways and report
what they computed."""
import bench_cpu_passes


def test_prefill_bench_computes_fewer_positions_shared_than_padded(checkpoint):
    result = bench_cpu_passes.main(["prefill", "--model", str(checkpoint), "--rounds", "2"])
    assert result["prompts"] == 12 and len(result["shared"]) == len(result["padded"]) == 2
    shared, padded = result["shared"][0]["positions"], result["padded"][0]["positions"]
    assert 0 < shared < result["promptTokens"] < padded
    assert result["ratio"] > 0 and result["cpu"]["cores"] >= 1


def test_logprobs_bench_times_both_passes(checkpoint):
    result = bench_cpu_passes.main(["logprobs", "--model", str(checkpoint), "--rows", "2", "--prompt-tokens", "90",
                                    "--response-tokens", "8", "--rounds", "1"])
    assert len(result["seconds"]["responses"]) == len(result["seconds"]["all"]) == 1
    assert result["rows"] == 2 and result["tokens"] == 2 * 98 - 40


def test_micro_batch_bench_times_one_pass_against_one_per_row(checkpoint):
    result = bench_cpu_passes.main(["micro-batches", "--model", str(checkpoint), "--rows", "2", "--prompt-tokens", "60",
                                    "--response-tokens", "8", "--rounds", "2"])
    assert len(result["single"]) == len(result["together"]) == 2
    assert all(r["seconds"] > 0 and r["peakRssGiB"] > 0 for r in result["single"] + result["together"])
    assert result["ratio"] > 0
