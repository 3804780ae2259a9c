import Foundation
import StampedeTestSupport
@testable import StampedeTool
import Testing

/// `stampede reliability` end to end: the real executable, real worker processes, real
/// redis-server processes (one killed and restarted; a cluster master killed).
@Suite("stampede reliability", .serialized)
struct ReliabilityCommandTests {
    @Test("every check, the cluster and Sentinel failovers too: a table each, and JSON with every field and counts that add up")
    func everyCheckIncludingClusterFailover() async throws {
        let run = try WorkerProcess(["reliability", "--check", "all", "--duration", "1", "--processes", "2", "--tasks", "4", "--json"])
        #expect(await run.exitStatus(within: .seconds(180)) == 0, "\(run.errorOutput)")
        #expect(run.output.contains("Invalidation check: 1 s, a write every 10 ms, origin 5 ms"), "\(run.output)")
        #expect(run.output.contains { $0.hasPrefix("Outage check: Redis killed and restarted, time to live 1 s") }, "\(run.output)")
        #expect(run.output.contains { $0.hasPrefix("Failover check: a master of a 3-master cluster (a replica each) killed") }, "\(run.output)")
        let result = try jsonObject(try #require(run.output.last { $0.hasPrefix("{") }, "\(run.output)"))

        let invalidation = try #require(result["invalidation"] as? [String: Any])
        for field in [
            "processes", "tasks", "keys", "near_cache", "duration_s", "load_ms", "write_interval_ms", "writes", "write_errors",
            "reads", "reads_after_invalidation", "stale_reads", "stale_share_percent", "read_errors", "readers_stopped_early",
            "error_samples",
        ] {
            #expect(invalidation[field] != nil, "invalidation has no \(field)")
        }
        #expect(invalidation["processes"] as? Int == 2 && invalidation["tasks"] as? Int == 4 && invalidation["keys"] as? Int == 8)
        let reads = try #require(invalidation["reads"] as? Int)
        let afterInvalidation = try #require(invalidation["reads_after_invalidation"] as? Int)
        let stale = try #require(invalidation["stale_reads"] as? Int)
        #expect(reads > 0)
        #expect(try #require(invalidation["writes"] as? Int) > 0)
        #expect(afterInvalidation <= reads && stale <= afterInvalidation)
        #expect(invalidation["read_errors"] as? Int == 0, "\(invalidation["error_samples"] ?? "")")
        if stale > 0 {
            let windows = try #require(invalidation["stale_window_ms"] as? [String: Double])
            #expect(windows["p50"]! <= windows["p99"]! && windows["p99"]! <= windows["max"]!)
        } else {
            #expect(invalidation["stale_window_ms"] == nil)
        }

        let outage = try #require(result["outage"] as? [String: Any])
        for field in [
            "processes", "tasks", "keys", "outage_s", "time_to_live_s", "load_ms", "origin_calls_during", "bound",
            "origin_calls_before", "origin_calls_after", "reads", "errors", "error_samples",
        ] {
            #expect(outage[field] != nil, "outage has no \(field)")
        }
        #expect(try #require(outage["origin_calls_during"] as? Int) >= 0)
        #expect(try #require(outage["reads"] as? Int) > 0)
        let outageSeconds = try #require(outage["outage_s"] as? Double)
        #expect(outage["bound"] as? Int == 2 * 8 * Int(outageSeconds.rounded(.up)))

        // The failover: callers load locally while the killed master's slots have no master,
        // keep what they loaded until that slot answers again, and see no error.
        let failover = try #require(result["failover"] as? [String: Any])
        #expect(failover["fault"] as? String == "failover")
        for field in ["outage_s", "origin_calls_during", "bound", "reads", "errors", "longest_read_ms"] {
            #expect(failover[field] != nil, "failover has no \(field)")
        }
        #expect(failover["errors"] as? Int == 0, "\(failover["error_samples"] ?? "")")
        #expect(try #require(failover["origin_calls_during"] as? Int) <= (failover["bound"] as? Int ?? 0) + 2 * 8)
        #expect(try #require(failover["longest_read_ms"] as? Double) > 0)

        // The same through a Sentinel failover.
        #expect(run.output.contains { $0.hasPrefix("Sentinel failover check: the master of a Sentinel set") }, "\(run.output)")
        let sentinel = try #require(result["sentinel_failover"] as? [String: Any])
        #expect(sentinel["fault"] as? String == "sentinel-failover")
        #expect(sentinel["errors"] as? Int == 0, "\(sentinel["error_samples"] ?? "")")
        // The window ends when the coordinator sees the new master named; lookups refilling
        // Redis at that moment may add one more round of loads.
        #expect(try #require(sentinel["origin_calls_during"] as? Int) <= (sentinel["bound"] as? Int ?? 0) + 2 * 8)
        #expect(try #require(sentinel["outage_s"] as? Double) > 0)
    }

    @Test("--redis with the outage check alone is refused: one line on standard error and the usage status")
    func outageRefusesUserRedis() async throws {
        let run = try WorkerProcess(["reliability", "--check", "outage", "--redis", "redis://127.0.0.1:1"])
        #expect(await run.exitStatus() == 64)
        #expect(run.errorOutput.count == 1, "\(run.errorOutput)")
        #expect(run.errorOutput.first?.contains("--redis cannot be used with --check outage") == true, "\(run.errorOutput)")
    }
}

/// The invalidation check's audit, apart from processes: figures worked out by hand.
@Suite("stampede reliability: the audit")
struct InvalidationAuditTests {
    @Test("stale reads are those that started after a newer version's invalidation returned; windows from the first such return")
    func staleReadsByHand() {
        typealias Invalidation = InvalidationAudit.Invalidation
        let log = [
            // Key 0: versions 1, 2 and 3, one writer.
            Invalidation(key: 0, version: 1, returnedAt: 100), Invalidation(key: 0, version: 2, returnedAt: 200),
            Invalidation(key: 0, version: 3, returnedAt: 300),
            Invalidation(key: 1, version: 1, returnedAt: 150),
            // Key 2: version 2's invalidation failed, so version 3's supersedes version 1 too.
            Invalidation(key: 2, version: 3, returnedAt: 300), Invalidation(key: 2, version: 1, returnedAt: 100),
        ]
        var first = ReadLog(keys: 3), second = ReadLog(keys: 3)
        // (key, version, start): stale? window
        for (key, version, start) in [
            (0, 0, 50),     // before any invalidation of key 0: no
            (0, 0, 100),    // at the instant version 1's returned, not after it: no
            (0, 0, 120),    // version 1 returned at 100: stale, 20
            (0, 1, 150),    // version 2 not yet: no
            (0, 1, 250),    // version 2 returned at 200: stale, 50
            (0, 0, 310),    // superseded by version 1 at 100: stale, 210
            (0, 3, 400),    // the newest: no
            (0, 4, 410),    // newer than the log (its invalidation not logged): no
        ] {
            first.record(key: key, version: version, startedAt: start)
        }
        for (key, version, start) in [
            (1, 0, 140),    // no
            (1, 0, 160),    // stale, 10
            (1, 1, 170),    // no
            (2, 1, 250),    // the newest version returned by then is 1: no
            (2, 1, 350),    // version 3 returned at 300: stale, 50
            (2, 2, 320),    // version 3 returned at 300: stale, 20
        ] {
            second.record(key: key, version: version, startedAt: start)
        }
        var audit = InvalidationAudit(invalidations: log, keys: 3)
        audit.add(first)
        audit.add(second)

        #expect(audit.findings.reads == 14)
        // All but key 0's at 50 and 100 and key 1's at 140.
        #expect(audit.findings.readsAfterInvalidation == 11)
        #expect(audit.findings.staleReads == 6)
        let windows = audit.findings.staleWindows
        #expect(windows.count == 6)
        #expect(windows.sampleMilliseconds.sorted() == [10, 20, 20, 50, 50, 210].map { Double($0) / 1e6 })
        #expect(windows.maximumMilliseconds == 210 / 1e6)
    }

    @Test("no invalidation, nothing stale; a key never invalidated has no read after one")
    func nothingInvalidated() {
        var reads = ReadLog(keys: 2)
        reads.record(key: 0, version: 0, startedAt: 10)
        reads.record(key: 1, version: 0, startedAt: 500)
        var audit = InvalidationAudit(invalidations: [.init(key: 0, version: 1, returnedAt: 100)], keys: 2)
        audit.add(reads)
        #expect(audit.findings.reads == 2)
        #expect(audit.findings.readsAfterInvalidation == 0)
        #expect(audit.findings.staleReads == 0)
        #expect(StaleWindows.milliseconds(atQuantile: 0.5, of: [audit.findings.staleWindows]) == nil)
    }

    @Test("the log's lines and the coordinator's orders read back as written")
    func lines() {
        let invalidation = InvalidationAudit.Invalidation(key: 7, version: 42, returnedAt: 123_456_789)
        #expect(invalidation.line == "k7 42 123456789")
        #expect(InvalidationAudit.Invalidation(line: invalidation.line) == invalidation)
        #expect(InvalidationAudit.Invalidation(line: "x7 42 1") == nil)
        for order in [ReliabilityOrder.go(startAt: 5), .writerDone, .stop(downAt: 1, upAt: 2), .exit] {
            #expect(ReliabilityOrder(line: order.line) == order)
        }
        #expect(ReliabilityOrder(line: "stop 1") == nil)
    }

    @Test("stale windows: exact percentiles while every window is kept; a bounded sample, weighted, past the limit")
    func windowPercentiles() {
        var all = StaleWindows()
        for window in 1...100 { all.record(milliseconds: Double(window)) }
        #expect(StaleWindows.milliseconds(atQuantile: 0.5, of: [all]) == 50)
        #expect(StaleWindows.milliseconds(atQuantile: 0.99, of: [all]) == 99)
        #expect(StaleWindows.milliseconds(atQuantile: 1, of: [all]) == 100)

        var many = StaleWindows()
        for window in 1...20_001 { many.record(milliseconds: Double(window)) }
        #expect(many.count == 20_001)
        #expect(many.sampleMilliseconds.count <= StaleWindows.sampleLimit && many.sampleMilliseconds.count >= StaleWindows.sampleLimit / 2)
        // Beside one small window from another process: the many still weigh as many.
        var one = StaleWindows()
        one.record(milliseconds: 0.5)
        let median = StaleWindows.milliseconds(atQuantile: 0.5, of: [one, many])!
        #expect(abs(median - 10_000) <= 8, "\(median)")
        #expect(StaleWindows.milliseconds(atQuantile: 1, of: [one, many]) == 20_001)
    }
}
