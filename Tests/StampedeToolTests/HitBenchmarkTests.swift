import StampedeTestSupport
import Testing

/// `stampede hit-benchmark` end to end: the real executable against a real Redis.
@Suite("stampede hit-benchmark", .serialized)
struct HitBenchmarkTests {
    @Test("the chosen storms only, on the event loop, each with its CPU per call, against a user's Redis that is left empty")
    func chosenStorms() async throws {
        try await withPrivateServer { server in
            let run = try WorkerProcess([
                "hit-benchmark", "--redis", server.url, "--keys", "50", "--tasks", "16", "--duration", "1",
                "--storms", "many", "hot", "--connections", "2", "--on-event-loop",
            ])
            #expect(await run.exitStatus(within: .seconds(120)) == 0, "\(run.errorOutput)")
            let rows = run.output.filter { $0.hasPrefix("| ") && !$0.hasPrefix("| storm ") }
            #expect(rows.count == 3, "\(rows)")
            #expect(rows.first?.hasPrefix("| redis-benchmark -t get -c 16 -P 1 (16 in flight) |") == true, "\(rows)")
            #expect(rows.contains { $0.hasPrefix("| cache.value, 50 keys, 16 tasks |") && $0.hasSuffix(" us |") }, "\(rows)")
            #expect(rows.contains { $0.hasPrefix("| cache.value, one hot key, 16 tasks |") && $0.hasSuffix(" us |") }, "\(rows)")
            try await withClient(RedisConfiguration(url: server.url)) { client async throws in
                #expect(try await client.send("DBSIZE").int == 0)
            }
        }
    }

    @Test("bad flags: one line on standard error and the usage status", arguments: [
        (["--connections", "0"], "--connections must be within 1...64"),
        (["--storms", "flood"], "flood"),
    ])
    func badInput(arguments: [String], message: String) async throws {
        let run = try WorkerProcess(["hit-benchmark"] + arguments)
        #expect(await run.exitStatus() == 64)
        #expect(run.errorOutput.count == 1, "\(run.errorOutput)")
        #expect(run.errorOutput.first?.contains(message) == true, "\(run.errorOutput)")
    }
}
