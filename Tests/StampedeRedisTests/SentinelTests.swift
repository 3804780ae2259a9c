import EmbeddedRedis
import Foundation
@testable import StampedeRedis
import StampedeTestSupport
import Synchronization
import Testing

/// A client under Sentinel against a real set: a master, a replica and three Sentinels.
@Suite("Sentinel", .serialized, .timeLimit(.minutes(3)))
struct SentinelTests {
    /// Short timeouts, so that a failover is noticed quickly; `timeout` for tests that only
    /// need answers (the machine may be busy with other suites' servers).
    func configuration(_ set: RedisSentinelSet, timeout: Duration = .milliseconds(500)) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: set.url + "?sentinel_recheck_ms=500")
        configuration.commandTimeout = timeout
        configuration.connectTimeout = timeout
        configuration.reconnectBackoff = .init(initial: .milliseconds(20), maximum: .milliseconds(200))
        return configuration
    }

    @Test("the client finds the master through the Sentinels: commands, scripts and pub/sub go there")
    func discovery() async throws {
        let set = try await RedisSentinelSet.start()
        defer { set.stop() }
        try await withClient(try configuration(set, timeout: .seconds(3))) { client in
            try await client.send("SET", "k", "v")
            #expect(try await client.send("GET", "k").string == "v")
            #expect(try await client.run(RedisScript("return redis.call('INCR', KEYS[1])"), keys: ["n"]).int == 1)
            let master = try #require(set.servers[0].port)
            #expect(client.sentinelMaster == .tcp(host: "127.0.0.1", port: master))
            try await client.subscribe(to: ["news"]) { events in
                try await client.send("PUBLISH", "news", "hello")
                for try await event in events {
                    if case .message(let message) = event { #expect(message.payload == Array("hello".utf8)); break }
                }
            }
        }
        // A name no Sentinel knows: a typed error naming it, within the timeouts.
        var unknown = try configuration(set, timeout: .seconds(3))
        unknown.sentinel?.masterName = "nosuchmaster"
        try await withClient(unknown) { client in
            let error = await redisError { try await client.send("PING") }
            #expect(error?.code == .connectionRefused)
            #expect(error?.message.contains("nosuchmaster") == true, "\(String(describing: error))")
        }
    }

    @Test("SENTINEL FAILOVER under writes: callers move to the new master, no write reaches the old one after the move, errors typed")
    func gracefulFailover() async throws {
        let set = try await RedisSentinelSet.start()
        defer { set.stop() }
        try await withClient(try configuration(set)) { client in
            try await client.send("SET", "counter", "0")
            let oldPort = try #require(set.servers[0].port)
            let traffic = Traffic()
            let writers = Task { await traffic.write(to: client, key: "counter", tasks: 4) }
            #expect(await eventually { traffic.successes > 100 })
            _ = try set.cli(["-p", "\(try #require(set.sentinels[0].port))", "sentinel", "failover", RedisSentinelSet.masterName])
            // The client follows the Sentinels' announcement.
            #expect(await eventually(within: .seconds(20)) {
                if case .tcp(_, let port)? = client.sentinelMaster { return port != oldPort }
                return false
            })
            let successesAtMove = traffic.successes
            #expect(await eventually(within: .seconds(20)) { traffic.successes > successesAtMove + 100 }, "writes go on at the new master")
            // What was in flight at the move has landed by now; nothing more may reach the old master.
            try await Task.sleep(for: .milliseconds(300))
            let oldWrites = try await incrCalls(onPort: oldPort)
            #expect(await eventually { traffic.successes > successesAtMove + 300 })
            #expect(try await incrCalls(onPort: oldPort) == oldWrites, "no write reached the demoted master after the move")
            traffic.stop()
            await writers.value
            #expect(traffic.errorCodes.isSubset(of: ["connectionLost", "timeout", "connectionRefused", "serverError"]), "\(traffic.errorCodes)")
            // Every INCR acknowledged after the move is in the new master's counter. (Those the old
            // master acknowledged between the promotion and the announcement are lost: Redis
            // replicates asynchronously.)
            let counted = try #require(try await client.send("GET", "counter").int)
            #expect(counted >= traffic.successes - successesAtMove, "\(counted) counted")
        }
    }

    @Test("kill -9 of the master under writes: callers move to the promoted replica without a restart; no caller hangs")
    func masterKilled() async throws {
        let set = try await RedisSentinelSet.start()
        defer { set.stop() }
        try await withClient(try configuration(set)) { client in
            let traffic = Traffic()
            let writers = Task { await traffic.write(to: client, key: "counter", tasks: 4) }
            #expect(await eventually { traffic.successes > 100 })
            set.servers[0].kill()
            let replica = try #require(set.servers[1].port)
            #expect(await eventually(within: .seconds(30)) { client.sentinelMaster == .tcp(host: "127.0.0.1", port: replica) })
            let successesAtMove = traffic.successes
            #expect(await eventually(within: .seconds(20)) { traffic.successes > successesAtMove + 100 })
            traffic.stop()
            await writers.value
            #expect(!traffic.errorCodes.isEmpty, "the kill was seen")
            #expect(traffic.errorCodes.isSubset(of: ["connectionLost", "timeout", "connectionRefused", "connectTimeout", "serverError"]), "\(traffic.errorCodes)")
            #expect(traffic.longestCall < .seconds(3), "no call hung: the longest took \(traffic.longestCall)")
        }
    }

    @Test("Sentinels with a password: found with sentinel_password, refused without it; no password in any error or log line")
    func sentinelPassword() async throws {
        let set = try await RedisSentinelSet.start(sentinelPassword: "s3ntinel-pw")
        defer { set.stop() }
        let logs = LogCapture()
        var configuration = try RedisConfiguration(url: set.url + "?sentinel_password=s3ntinel-pw")
        configuration.password = nil
        let client = try RedisClient(configuration: configuration, logger: logs.logger())
        try await client.send("SET", "k", "v")
        #expect(try await client.send("GET", "k").string == "v")
        await client.shutdown()

        var without = try RedisConfiguration(url: set.url)
        without.connectTimeout = .milliseconds(500)
        let refused = try RedisClient(configuration: without, logger: logs.logger())
        let error = await redisError { try await refused.send("PING") }
        await refused.shutdown()
        #expect(error?.code == .connectionRefused)
        #expect(error?.message.contains("authenticationFailed") == true, "\(String(describing: error))")

        let urlError = await redisError { _ = try RedisConfiguration(url: set.url + "?sentinel_password=s3ntinel-pw&bad=1") }
        #expect(urlError?.code == .invalidURL)
        for line in logs.all.map(\.description) + [error?.description ?? "", urlError?.description ?? "", "\(configuration)"] {
            #expect(!line.contains("s3ntinel-pw"), "\(line)")
        }
        #expect(!logs.all.isEmpty, "the client logged its connects")
    }

    /// `cmdstat_incr` calls on the server at `port`.
    func incrCalls(onPort port: Int) async throws -> Int {
        try await withClient(RedisConfiguration(url: "redis://127.0.0.1:\(port)")) { node in
            let stats = try await node.send("INFO", "commandstats").string ?? ""
            let line = stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_incr:") } ?? ""
            return Int(line.split(separator: "calls=").last?.split(separator: ",").first ?? "0") ?? 0
        }
    }
}

/// Writers that INCR one key back to back, counting what they saw.
final class Traffic: Sendable {
    private struct State {
        var successes = 0
        var errorCodes: Set<String> = []
        var longestCall: Duration = .zero
        var stopped = false
    }
    private let state = Mutex(State())

    var successes: Int { state.withLock { $0.successes } }
    var errorCodes: Set<String> { state.withLock { $0.errorCodes } }
    var longestCall: Duration { state.withLock { $0.longestCall } }
    func stop() { state.withLock { $0.stopped = true } }

    func write(to client: RedisClient, key: String, tasks: Int) async {
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<tasks {
                group.addTask {
                    while !self.state.withLock({ $0.stopped }) {
                        let started = ContinuousClock.now
                        do {
                            try await client.send("INCR", RedisArgument(key))
                            self.state.withLock { $0.successes += 1 }
                        } catch let error as RedisError {
                            self.state.withLock { _ = $0.errorCodes.insert("\(error.code)") }
                            try? await Task.sleep(for: .milliseconds(10))
                        } catch {
                            self.state.withLock { _ = $0.errorCodes.insert("\(error)") }
                        }
                        let took = ContinuousClock.now - started
                        self.state.withLock { $0.longestCall = max($0.longestCall, took) }
                    }
                }
            }
        }
    }
}
