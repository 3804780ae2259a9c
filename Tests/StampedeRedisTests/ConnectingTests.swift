import StampedeTestSupport
import EmbeddedRedis
import Testing
import StampedeRedis

@Suite("Connecting and authenticating")
struct ConnectingTests {
    static let password = "s3cret-pass"

    @Test func authenticatesWithAPasswordSelectsADatabaseAndNamesTheClient() async throws {
        try await withPrivateServer(.init(password: Self.password)) { server in
            var configuration = try RedisConfiguration(url: "redis://:\(Self.password)@127.0.0.1:\(server.port!)/3")
            configuration.clientName = "stampede-test"
            try await withClient(configuration) { client in
                try await client.send("SET", "k", "in-db-3")
                #expect(try await client.send("CLIENT", "GETNAME").string == "stampede-test")
                #expect(try await client.send("SELECT", "0") == .simpleString("OK"))
                #expect(try await client.send("GET", "k") == .null)
            }
        }
    }

    @Test func authenticatesAsAnACLUser() async throws {
        try await withPrivateServer(.init(users: [("alice", "wonder@land")])) { server in
            let url = "redis://alice:wonder%40land@127.0.0.1:\(server.port!)"
            let configuration = try RedisConfiguration(url: url)
            try await withClient(configuration) { client async throws in
                #expect(try await client.send("ACL", "WHOAMI").string == "alice")
            }
        }
    }

    @Test func aWrongPasswordIsAnAuthenticationFailureThatNeverShowsThePassword() async throws {
        try await withPrivateServer(.init(password: Self.password)) { server in
            for url in ["redis://:wrong-guess@127.0.0.1:\(server.port!)", "redis://127.0.0.1:\(server.port!)"] {
                let configuration = try RedisConfiguration(url: url)
                try await withClient(configuration) { client in
                    let error = await redisError { try await client.send("PING") }
                    #expect(error?.code == .authenticationFailed)
                    #expect(error.map { !"\($0)".contains("wrong-guess") } == true)
                }
                #expect(!"\(configuration)".contains("wrong-guess"))
            }
        }
    }

    @Test func connectsOverAUnixSocket() async throws {
        try await withPrivateServer(.init(unixSocket: true)) { server in
            #expect(server.url.hasPrefix("unix:///"))
            let configuration = try RedisConfiguration(url: server.url)
            try await withClient(configuration) { client async throws in
                #expect(try await client.send("PING") == .simpleString("PONG"))
            }
        }
    }

    @Test func anUnknownHostIsUnknownHost() async throws {
        var configuration = try RedisConfiguration(url: "redis://no-such-host.invalid:6379")
        configuration.connectTimeout = .seconds(5)
        try await withClient(configuration) { client in
            let error = await redisError { try await client.send("PING") }
            #expect(error?.code == .unknownHost, "\(String(describing: error))")
        }
    }

    @Test func nothingListeningIsConnectionRefusedAndFailsFastUntilTheRetry() async throws {
        let server = try await RedisServer.start()
        let url = server.url
        server.stop()
        var configuration = try RedisConfiguration(url: url)
        configuration.reconnectBackoff = .init(initial: .seconds(5), maximum: .seconds(5))
        try await withClient(configuration) { client in
            let first = await redisError { try await client.send("PING") }
            #expect(first?.code == .connectionRefused)
            // While waiting to retry, commands fail at once with the same code.
            let clock = ContinuousClock()
            let start = clock.now
            let second = await redisError { try await client.send("PING") }
            #expect(second?.code == .connectionRefused)
            #expect(clock.now - start < .milliseconds(500), "the retry is 5 s away")
        }
    }

    @Test func rejectsAnInvalidConfiguration() throws {
        var configuration = RedisConfiguration(endpoint: .tcp(host: "localhost", port: 6379))
        configuration.commandTimeout = .zero
        #expect(throws: RedisError(.invalidArgument, "")) { try RedisClient(configuration: configuration) }
        configuration = RedisConfiguration(endpoint: .tcp(host: "localhost", port: 6379), connectionCount: 0)
        #expect(throws: RedisError(.invalidArgument, "")) { try RedisClient(configuration: configuration) }
    }
}
