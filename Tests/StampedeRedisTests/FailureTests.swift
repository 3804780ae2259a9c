import StampedeTestSupport
import EmbeddedRedis
import Testing
import StampedeRedis

/// Timeouts, a killed server and a paused one: every command ends, none hangs.
@Suite("Failures", .serialized)
struct FailureTests {
    @Test func aSlowReplyTimesOutAndTheConnectionKeepsWorking() async throws {
        try await withPrivateServer { server in
            var configuration = try RedisConfiguration(url: server.url)
            configuration.commandTimeout = .milliseconds(500)
            try await withClient(configuration) { client in
                try await client.send("SET", "k", "v")
                let connection = try await client.send("CLIENT", "ID")
                // DEBUG SLEEP blocks the server for 0.8 s: longer than the timeout, shorter
                // than the two silent timeouts after which a connection is given up.
                let error = await redisError { try await client.send("DEBUG", "SLEEP", "0.8") }
                #expect(error?.code == .timeout)
                // The late reply to DEBUG SLEEP is dropped; later replies match their
                // commands, on the same connection.
                #expect(try await client.send("GET", "k").string == "v")
                #expect(try await client.send("ECHO", "after") == .bulkString(Array("after".utf8)))
                #expect(try await client.send("CLIENT", "ID") == connection)
            }
        }
    }

    @Test func aPausedServerTimesCommandsOutAndIsUsedAgainWhenResumed() async throws {
        try await withPrivateServer { server in
            var configuration = try RedisConfiguration(url: server.url)
            configuration.commandTimeout = .milliseconds(200)
            configuration.connectTimeout = .milliseconds(500)
            try await withClient(configuration) { client in
                try await client.send("SET", "k", "v")
                server.pause()
                defer { server.resume() }
                let errors = try await withThrowingTaskGroup(of: RedisError?.self) { group in
                    for _ in 0..<50 { group.addTask { await redisError { try await client.send("GET", "k") } } }
                    return try await group.reduce(into: [RedisError?]()) { $0.append($1) }
                }
                #expect(errors.allSatisfy { $0?.code == .timeout })
                server.resume()
                #expect(await eventually { (try? await client.send("GET", "k"))?.string == "v" })
            }
        }
    }

    @Test func killedAndRestartedServerFailsInFlightCommandsThenRecovers() async throws {
        try await withPrivateServer { server in
            var configuration = try RedisConfiguration(url: server.url)
            configuration.commandTimeout = .milliseconds(500)
            configuration.reconnectBackoff = .init(initial: .milliseconds(20), maximum: .milliseconds(100))
            try await withClient(configuration) { client in
                try await client.send("SET", "k", "v")
                // Traffic that keeps running across the crash: every command must end with a
                // value or a typed error, and no task may hang.
                let clock = ContinuousClock()
                let outcomes = try await withThrowingTaskGroup(of: [String].self) { group in
                    for _ in 0..<20 {
                        group.addTask {
                            var seen: [String] = []
                            let stop = clock.now + .seconds(2)
                            while clock.now < stop {
                                let start = clock.now
                                do {
                                    _ = try await client.send("GET", "k")
                                    seen.append("ok")
                                } catch let error as RedisError {
                                    seen.append("\(error.code)")
                                    // Fails fast or within the timeout, never later.
                                    #expect(clock.now - start < .seconds(2))
                                    try await Task.sleep(for: .milliseconds(5))
                                }
                            }
                            return seen
                        }
                    }
                    group.addTask {
                        try await Task.sleep(for: .milliseconds(300))
                        server.kill()
                        try await Task.sleep(for: .milliseconds(300))
                        try await server.restart()
                        return []
                    }
                    return try await group.reduce(into: [String]()) { $0 += $1 }
                }
                let failures = Set(outcomes.filter { $0 != "ok" })
                #expect(outcomes.contains("ok"))
                #expect(!failures.isEmpty, "the crash was not seen")
                #expect(failures.isSubset(of: ["connectionLost", "connectionRefused", "timeout"]), "\(failures)")
                // After the restart the data is gone (no persistence) and commands succeed.
                #expect(await eventually { (try? await client.send("PING")) == .simpleString("PONG") })
                #expect(try await client.send("GET", "k") == .null)
            }
        }
    }

    @Test func commandsQueuedDuringAReconnectGoOutOnTheNewConnection() async throws {
        try await withPrivateServer { server in
            var configuration = try RedisConfiguration(url: server.url)
            configuration.reconnectBackoff = .init(initial: .milliseconds(10), maximum: .milliseconds(50))
            try await withClient(configuration) { client in
                try await client.send("SET", "k", "v")
                try await client.send("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no").int.map { #expect($0 >= 1) }
                // The server is up: the client reconnects and the next command succeeds.
                #expect(await eventually { (try? await client.send("GET", "k"))?.string == "v" })
            }
        }
    }

    @Test func aShutDownClientRefusesCommands() async throws {
        let server = try await SharedServer.instance.get()
        let client = try RedisClient(configuration: RedisConfiguration(url: server.url))
        try await client.send("PING")
        await client.shutdown()
        let error = await redisError { try await client.send("PING") }
        #expect(error?.code == .clientClosed)
    }
}
