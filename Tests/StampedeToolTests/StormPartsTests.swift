import Foundation
@testable import StampedeTool
import Testing

/// The storm's pieces that need no process or server: the latency histogram, the line
/// protocol, the report's derived fields and the chart's axis.
@Suite("stampede storm: parts")
struct StormPartsTests {
    @Test("percentiles are within the 1% bucket width, the maximum is exact, and histograms merge")
    func histogramPercentiles() {
        var histogram = LatencyHistogram()
        // 1 ms ... 1000 ms, one each: p50 = 500 ms, p99 = 990 ms.
        for milliseconds in 1...1000 { histogram.record(microseconds: Double(milliseconds) * 1000) }
        #expect(histogram.count == 1000)
        #expect(abs(histogram.milliseconds(atQuantile: 0.5) - 500) / 500 < 0.01)
        #expect(abs(histogram.milliseconds(atQuantile: 0.99) - 990) / 990 < 0.01)
        #expect(histogram.milliseconds(atQuantile: 1) == 1000)
        #expect(histogram.count(above: 900) >= 99 && histogram.count(above: 900) <= 101)

        var other = LatencyHistogram()
        other.record(.seconds(5))
        other.record(microseconds: 0.2)  // below a microsecond: the first bucket
        histogram.merge(other)
        #expect(histogram.count == 1002)
        #expect(histogram.milliseconds(atQuantile: 1) == 5000)
        #expect(LatencyHistogram().milliseconds(atQuantile: 0.5) == 0, "empty")
    }

    @Test("a histogram holds no buckets until it records, and an empty one merges and travels as empty")
    func histogramStartsEmpty() throws {
        var empty = LatencyHistogram()
        #expect(empty.counts.isEmpty)
        empty.merge(LatencyHistogram())
        #expect(empty.counts.isEmpty)
        let decoded = try JSONDecoder().decode(LatencyHistogram.self, from: JSONEncoder().encode(empty))
        #expect(decoded.counts.isEmpty && decoded.count == 0)
        var recorded = LatencyHistogram()
        recorded.record(.milliseconds(3))
        empty.merge(recorded)
        #expect(empty.count == 1 && empty.milliseconds(atQuantile: 1) == 3)
    }

    @Test("each task of each process picks keys from its own sequence, the same for the same seed")
    func keySequences() {
        func draws(_ process: Int, _ task: Int) -> [UInt64] {
            var generator = StormCallers.keyGenerator(seed: 42, process: process, task: task)
            return (0..<16).map { _ in generator.next() }
        }
        #expect(draws(1, 3) == draws(1, 3))
        // No sequence is another's shifted by a draw or two (as seeds one SplitMix64 step apart would give).
        let sequences = [draws(0, 0), draws(1, 0), draws(0, 1), draws(2, 5)]
        for (i, one) in sequences.enumerated() {
            for other in sequences[(i + 1)...] {
                #expect(Set(one).isDisjoint(with: other))
            }
        }
    }

    @Test("a histogram crosses the wire sparse and intact; a tampered one is refused")
    func histogramCoding() throws {
        var histogram = LatencyHistogram()
        for microseconds in [3.0, 3.0, 250, 12_000] { histogram.record(microseconds: microseconds) }
        let data = try JSONEncoder().encode(histogram)
        #expect(data.count < 200, "sparse: only the buckets in use")
        #expect(try JSONDecoder().decode(LatencyHistogram.self, from: data) == histogram)
        let wrongCount = Data(#"{"buckets":[[3,2]],"count":5,"maximumMicroseconds":3}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(LatencyHistogram.self, from: wrongCount) }
        let outOfRange = Data(#"{"buckets":[[99999,1]],"count":1,"maximumMicroseconds":3}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(LatencyHistogram.self, from: outOfRange) }
    }

    @Test("protocol lines: what is sent is what is read; anything else is a diagnostic")
    func protocolLines() {
        var report = WorkerReport()
        report.requests = 7
        report.latency.record(microseconds: 1500)
        report.errorSamples = ["boom"]
        #expect(WorkerMessage<WorkerReport>(line: WorkerMessage.result(report).line) == .result(report))
        #expect(WorkerMessage<WorkerReport>(line: "ready") == .ready)
        for other in ["Error: something", "result {not json", "readyy", ""] {
            #expect(WorkerMessage<WorkerReport>(line: other) == nil, "\(other)")
        }
        #expect(CoordinatorMessage(line: CoordinatorMessage.go(startAt: 123_456_789).line) == .go(startAt: 123_456_789))
        #expect(CoordinatorMessage(line: "exit") == .exit)
        #expect(CoordinatorMessage(line: "go soon") == nil)
    }

    @Test("the report: per-key origin calls, added latency for a miss, blocked callers, the slowest worker's wall time")
    func reportFields() {
        let parameters = StormParameters(processes: 2, tasks: 3, keys: 2, loadMs: 100, duration: 1, holdMs: 1, seed: 9, run: "t")
        var fast = WorkerReport(), slow = WorkerReport()
        for milliseconds in [101.0, 102, 103] { fast.latency.record(microseconds: milliseconds * 1000) }
        for milliseconds in [10.0, 20, 130] { slow.latency.record(microseconds: milliseconds * 1000) }
        fast.requests = 3
        slow.requests = 3
        fast.wallMilliseconds = 104
        slow.wallMilliseconds = 131
        slow.bookkeepingCommands = 4
        let miss = RunReport(parameters: parameters, scenario: .miss, strategy: .naive, repeat: 1,
                             workers: [fast, slow], originCalls: 6, redisCommands: 12)
        #expect(miss.requests == 6)
        #expect(miss.originCallsPerKey == 3)
        #expect(miss.blocked == 4, "callers slower than load_ms / 2")
        #expect(miss.wallMs == 131)
        #expect(abs(miss.addedLatencyMsP99 - 30) < 1.5, "p99 (130 ms) less the 100 ms load")
        #expect(miss.handoffMs == nil && miss.violations == nil)
        let stale = RunReport(parameters: parameters, scenario: .stale, strategy: .naive, repeat: 1,
                              workers: [fast, slow], originCalls: 2, redisCommands: 12)
        #expect(stale.addedLatencyMsP99 == stale.latencyMs.p99, "the p99 itself outside the miss scenario")
        let lock = RunReport(parameters: parameters, scenario: .lock, strategy: .stampede, repeat: 1,
                             workers: [fast], originCalls: 0, redisCommands: 0)
        #expect(lock.keys == 1 && lock.violations == 0 && lock.handoffMs != nil)
        #expect(lock.jsonLine.contains("\"handoff_ms\"") && !miss.jsonLine.contains("\"handoff_ms\""))
        var instant = parameters
        instant.loadMs = 0
        let noWait = RunReport(parameters: instant, scenario: .miss, strategy: .naive, repeat: 1,
                               workers: [fast, slow], originCalls: 6, redisCommands: 12)
        #expect(noWait.blocked == 0, "an origin that takes no time blocks nobody")
    }

    @Test("with --repeat, a table's figures are each strategy's medians over its runs")
    func tableMediansOverRepeats() throws {
        let parameters = StormParameters(processes: 1, tasks: 1, keys: 2, loadMs: 100, duration: 1, holdMs: 1, seed: 9, run: "t")
        func run(_ strategy: Strategy, _ number: Int, originCalls: Int) -> RunReport {
            var worker = WorkerReport()
            worker.requests = 10
            worker.latency.record(microseconds: 100_000)
            return RunReport(parameters: parameters, scenario: .miss, strategy: strategy, repeat: number,
                             workers: [worker], originCalls: originCalls, redisCommands: 0)
        }
        let reports = [
            run(.naive, 1, originCalls: 9), run(.naive, 2, originCalls: 1), run(.naive, 3, originCalls: 5),
            run(.stampede, 1, originCalls: 2), run(.stampede, 2, originCalls: 4),
        ]
        let table = StormTable.render(scenario: .miss, parameters: parameters, reports: reports).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(table[0].hasSuffix("(medians of 3 runs)"))
        let header = table[2].split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        let column = try #require(header.firstIndex(of: "origin calls"))
        func cell(_ strategy: Strategy) -> String? {
            table.first { $0.hasPrefix("| \(strategy.rawValue) |") }?.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }[column]
        }
        #expect(cell(.naive) == "5", "the middle of 9, 1 and 5")
        #expect(cell(.stampede) == "3", "the mean of the middle two of 2 and 4")
        #expect(cell(.local) == nil, "no row for a strategy that did not run")
        #expect(median([]) == 0 && median([7]) == 7 && median([4, 1, 3, 2]) == 2.5)
    }

    @Test("--scenario and --strategy take one value or all; hot-hit and lock use one key whatever --keys says")
    func choicesAndKeys() {
        #expect(OneOrAll<Scenario>(argument: "hot-hit")?.values == [.hotHit])
        #expect(OneOrAll<Scenario>(argument: "all")?.values == Scenario.allCases)
        #expect(OneOrAll<Strategy>(argument: "all")?.values == Strategy.allCases)
        #expect(OneOrAll<Strategy>(argument: "bogus") == nil)
        #expect(OneOrAll<Strategy>.allValueStrings == ["naive", "local", "stampede", "all"])
        #expect(Scenario.miss.keys(given: nil) == 8 && Scenario.hit.keys(given: nil) == 1_000)
        #expect(Scenario.hit.keys(given: 5) == 5 && Scenario.stale.keys(given: 5) == 5)
        #expect(Scenario.hotHit.keys(given: 5) == 1 && Scenario.lock.keys(given: nil) == 1)
    }

    @Test("Redis commands are the calls of every command type but UNSUBSCRIBE, which a cache sends as it shuts down")
    func commandStats() {
        let info = """
            # Commandstats\r
            cmdstat_hmget:calls=1000,usec=2000,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r
            cmdstat_unsubscribe:calls=4,usec=8,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r
            cmdstat_time:calls=7,usec=7,usec_per_call=1.00,rejected_calls=0,failed_calls=0\r
            cmdstat_info:calls=2,usec=90,usec_per_call=45.00,rejected_calls=0,failed_calls=0\r
            """
        #expect(Keyspace.commands(inCommandStats: info) == 1_009)
    }

    @Test("chart axes: round ticks around the data, finer for narrow ranges, at most a dozen")
    func chartTicks() {
        #expect(StormChart.logTicks(from: 104, to: 111) == [100, 120])
        let wide = StormChart.logTicks(from: 0.02, to: 3_000)
        #expect(wide.first! <= 0.02 && wide.last! >= 3_000 && wide.count <= 12)
        let middle = StormChart.logTicks(from: 0.4, to: 20)
        #expect(middle.first! <= 0.4 && middle.last! >= 20 && middle.count <= 12)
        #expect(zip(middle, middle.dropFirst()).allSatisfy { $0 < $1 })
        #expect(StormChart.escape("a < b & \"c\"") == "a &lt; b &amp; &quot;c&quot;")
    }
}
