import Stampede
import StampedeTestSupport
import Testing

@Suite("Redlock", .serialized)
struct RedlockTests {
    @Test func holdsWithAMajorityOfFiveMastersAndNotWithout() async throws {
        var servers: [RedisServer] = []
        for _ in 0..<5 { servers.append(try await RedisServer.start()) }
        defer { for server in servers { server.stop() } }
        let clients = try servers.map { server -> RedisClient in
            var configuration = try RedisConfiguration(url: server.url)
            configuration.commandTimeout = .milliseconds(200)
            configuration.connectTimeout = .milliseconds(200)
            return try RedisClient(configuration: configuration)
        }
        defer { for client in clients { Task { await client.shutdown() } } }
        let redlock = try Redlock(clients: clients, attempts: 2, retryDelay: .milliseconds(20))
        #expect(redlock.quorum == 3)

        // All up: the lock is set on every master while the body runs, and released after.
        // A lease long enough that a loaded machine's first connections fit in it.
        let holders = try await redlock.withLock("job", leaseDuration: .seconds(30)) { lease in
            var holders = 0
            for client in clients where try await client.send("GET", "stampede:redlock:job").string == lease.token { holders += 1 }
            return holders
        }
        #expect(holders == 5)
        for client in clients { #expect(try await client.send("EXISTS", "stampede:redlock:job") == .integer(0)) }

        // A second contender cannot take it while it is held.
        let contended = try await redlock.withLock("job", leaseDuration: .seconds(5)) { _ in
            await #expect(throws: StampedeError(.noQuorum, "")) {
                try await redlock.withLock("job", leaseDuration: .seconds(5)) { _ in }
            }
            return true
        }
        #expect(contended)

        // Two masters down: three of five is still a majority.
        servers[0].kill()
        servers[1].kill()
        #expect(try await redlock.withLock("job", leaseDuration: .seconds(5)) { _ in "held" } == "held")

        // Three down: no majority, no lock.
        servers[2].kill()
        let error = await stampedeError { try await redlock.withLock("job", leaseDuration: .seconds(5)) { _ in } }
        #expect(error?.code == .noQuorum)
    }

    @Test func rejectsBadInput() async throws {
        #expect(throws: StampedeError(.invalidArgument, "")) { try Redlock(clients: []) }
        let server = try await SharedServer.instance.get()
        let client = try RedisClient(configuration: RedisConfiguration(url: server.url))
        defer { Task { await client.shutdown() } }
        let redlock = try Redlock(clients: [client])
        await #expect(throws: StampedeError(.invalidArgument, "")) { try await redlock.withLock("", leaseDuration: .seconds(1)) { _ in } }
        await #expect(throws: StampedeError(.invalidArgument, "")) { try await redlock.withLock("x", leaseDuration: .zero) { _ in } }
    }
}
