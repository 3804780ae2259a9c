import Foundation

/// A private, throwaway Sentinel set: a master, a replica of it, and three Sentinels that
/// watch them under ``masterName`` (quorum 2, a master is down after 1 s without an answer,
/// failover timeout 5 s), every process a ``RedisServer`` on free loopback ports.
///
/// ```swift
/// let set = try await RedisSentinelSet.start()
/// defer { set.stop() }
/// let configuration = try RedisConfiguration(url: set.url)
/// ```
public final class RedisSentinelSet: Sendable {
    public static let masterName = "mymaster"

    /// The master and the replica as started (after a failover, the replica is the master).
    public let servers: [RedisServer]
    public let sentinels: [RedisServer]
    /// The Sentinels' own password, if they were given one.
    public let sentinelPassword: String?

    private init(servers: [RedisServer], sentinels: [RedisServer], sentinelPassword: String?) {
        self.servers = servers
        self.sentinels = sentinels
        self.sentinelPassword = sentinelPassword
    }

    /// `redis+sentinel://127.0.0.1:S1,127.0.0.1:S2,127.0.0.1:S3/mymaster`.
    public var url: String {
        "redis+sentinel://" + sentinels.compactMap { $0.port.map { "127.0.0.1:\($0)" } }.joined(separator: ",") + "/\(Self.masterName)"
    }

    /// Starts the servers and the Sentinels and waits until every Sentinel knows the
    /// replica and the two other Sentinels (at most `limit`). With `sentinelPassword`, the
    /// Sentinels require it of their clients (and of each other).
    public static func start(sentinelPassword: String? = nil, within limit: Duration = .seconds(30)) async throws -> RedisSentinelSet {
        var started: [RedisServer] = []
        do {
            let master = try await RedisServer.start(.init(extraArguments: ["--repl-diskless-sync-delay", "0"]))
            started.append(master)
            guard let masterPort = master.port else { throw RedisServer.StartError(description: "the master has no port") }
            let replica = try await RedisServer.start(.init(extraArguments: [
                "--repl-diskless-sync-delay", "0", "--replicaof", "127.0.0.1", "\(masterPort)",
            ]))
            started.append(replica)
            var sentinels: [RedisServer] = []
            for _ in 0..<3 {
                var lines = [
                    "sentinel monitor \(masterName) 127.0.0.1 \(masterPort) 2",
                    "sentinel down-after-milliseconds \(masterName) 1000",
                    "sentinel failover-timeout \(masterName) 5000",
                ]
                if let sentinelPassword { lines += ["requirepass \(sentinelPassword)", "sentinel sentinel-pass \(sentinelPassword)"] }
                let sentinel = try await RedisServer.start(.sentinel(lines))
                started.append(sentinel)
                sentinels.append(sentinel)
            }
            let set = RedisSentinelSet(servers: [master, replica], sentinels: sentinels, sentinelPassword: sentinelPassword)
            try await set.waitUntilReady(within: limit)
            return set
        } catch {
            for server in started { server.stop() }
            throw error
        }
    }

    private func waitUntilReady(within limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if try isReady() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw RedisServer.StartError(description: "the Sentinel set was not ready within \(limit)")
    }

    private func isReady() throws -> Bool {
        guard let replicaPort = servers[1].port,
              try cli(["-p", "\(replicaPort)", "info", "replication"]).contains("master_link_status:up")
        else { return false }
        for sentinel in sentinels {
            guard let port = sentinel.port else { return false }
            let fields = try cli(sentinelArguments(port) + ["sentinel", "master", Self.masterName]).split(separator: "\n").map(String.init)
            func field(_ name: String) -> String? { fields.firstIndex(of: name).flatMap { $0 + 1 < fields.count ? fields[$0 + 1] : nil } }
            guard field("num-other-sentinels") == "2", field("num-slaves") == "1" else { return false }
        }
        return true
    }

    /// The port of the master as the first Sentinel that answers names it.
    public func masterPort() throws -> Int? {
        for sentinel in sentinels {
            guard let port = sentinel.port else { continue }
            let reply = try cli(sentinelArguments(port) + ["sentinel", "get-master-addr-by-name", Self.masterName]).split(separator: "\n")
            if reply.count == 2, let masterPort = Int(reply[1]) { return masterPort }
        }
        return nil
    }

    /// `redis-cli` arguments that reach the Sentinel on `port`, with its password.
    public func sentinelArguments(_ port: Int) -> [String] {
        ["-p", "\(port)"] + (sentinelPassword.map { ["-a", $0, "--no-auth-warning"] } ?? [])
    }

    /// The server listening on `port`.
    public func server(at port: Int) -> RedisServer? {
        servers.first { $0.port == port }
    }

    /// Runs `redis-cli ARGUMENTS...`; returns its output.
    @discardableResult
    public func cli(_ arguments: [String]) throws -> String {
        try ChildProcess.run(URL(fileURLWithPath: try RedisCluster.cliPath()), arguments).output
    }

    /// Stops every process and removes its folder.
    public func stop() {
        for server in sentinels + servers { server.stop() }
    }

    deinit { stop() }
}
