import Foundation

/// A private, throwaway Redis Cluster: `masters` masters with `replicasPerMaster` replicas
/// each, every node a ``RedisServer`` on free loopback ports (its client port and its
/// cluster-bus port), gone when stopped or when the process that started it exits.
///
/// ```swift
/// let cluster = try await RedisCluster.start(masters: 3)
/// defer { cluster.stop() }
/// let seeds = cluster.nodes.map(\.url)
/// ```
///
/// The slots are assigned by `redis-cli --cluster create` (Debian's redis-tools), and
/// ``start(masters:replicasPerMaster:)`` returns once every node reports the cluster as
/// ok and every replica is linked to its master.
public final class RedisCluster: Sendable {
    /// Every node, masters first as they were created.
    public let nodes: [RedisServer]
    public let masters: Int
    public let replicasPerMaster: Int
    /// The certificate authority of a TLS-only cluster, which clients must trust.
    public let tlsAuthorityFile: String?

    private init(nodes: [RedisServer], masters: Int, replicasPerMaster: Int, tlsAuthorityFile: String?) {
        self.nodes = nodes
        self.masters = masters
        self.replicasPerMaster = replicasPerMaster
        self.tlsAuthorityFile = tlsAuthorityFile
    }

    /// The `redis-cli` binary: `$REDIS_CLI`, else the first on `PATH`.
    public static func cliPath() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["REDIS_CLI"], !explicit.isEmpty { return explicit }
        let path = (environment["PATH"] ?? "") + ":/usr/bin:/usr/local/bin"
        for folder in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(folder)/redis-cli") {
            return "\(folder)/redis-cli"
        }
        throw RedisServer.StartError(description: "redis-cli was not found on PATH; install it with: apt-get install -y redis-tools")
    }

    /// Starts the nodes, creates the cluster and waits until it is ready (at most `limit`).
    ///
    /// - Throws: ``RedisServer/StartError`` when a node does not start, the cluster cannot
    ///   be created, or it is not ready within `limit`.
    /// With `tls`, every node speaks TLS only: to clients on its port, and to the other
    /// nodes on the cluster bus and for replication.
    public static func start(
        masters: Int = 3, replicasPerMaster: Int = 0, tls: RedisServer.TLS? = nil, within limit: Duration = .seconds(30)
    ) async throws -> RedisCluster {
        precondition(masters >= 3, "Redis Cluster needs at least 3 masters")
        var nodes: [RedisServer] = []
        do {
            for _ in 0..<(masters * (1 + replicasPerMaster)) {
                var arguments = [
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--cluster-port", "\(try freeLoopbackPort())",
                    // Short, so that a killed master is failed over within seconds.
                    "--cluster-node-timeout", "2000", "--repl-diskless-sync-delay", "0",
                ]
                if tls != nil { arguments += ["--tls-cluster", "yes", "--tls-replication", "yes"] }
                nodes.append(try await RedisServer.start(.init(extraArguments: arguments, tls: tls)))
            }
            let cluster = RedisCluster(nodes: nodes, masters: masters, replicasPerMaster: replicasPerMaster, tlsAuthorityFile: tls?.authorityFile)
            let addresses = nodes.compactMap { $0.port.map { "127.0.0.1:\($0)" } }
            let created = try cluster.cli(["--cluster", "create"] + addresses + ["--cluster-replicas", "\(replicasPerMaster)", "--cluster-yes"])
            guard created.status == 0 else {
                throw RedisServer.StartError(description: "redis-cli --cluster create failed: \(created.output.suffix(600))")
            }
            try await cluster.waitUntilReady(within: limit)
            return cluster
        } catch {
            for node in nodes { node.stop() }
            throw error
        }
    }

    /// Waits until every running node reports `cluster_state:ok`, knows every replica, and
    /// every replica is linked to its master.
    public func waitUntilReady(within limit: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if try isReady() { return }
            // Each check starts a few redis-cli processes: not too often, on a shared machine.
            try await Task.sleep(for: .milliseconds(100))
        }
        throw RedisServer.StartError(description: "the cluster was not ready within \(limit)")
    }

    private func isReady() throws -> Bool {
        // Every node agrees first; the replicas' links are checked once that holds.
        for node in nodes {
            guard let port = node.port else { continue }
            guard try cli(["-p", "\(port)", "cluster", "info"]).output.contains("cluster_state:ok") else { return false }
        }
        for node in nodes {
            guard let port = node.port else { continue }
            let known = try cli(["-p", "\(port)", "cluster", "nodes"]).output.split(separator: "\n")
            guard known.filter({ $0.contains("slave") && !$0.contains("fail") }).count == masters * replicasPerMaster else { return false }
            let role = try cli(["-p", "\(port)", "role"]).output
            if role.hasPrefix("slave"), try !cli(["-p", "\(port)", "info", "replication"]).output.contains("master_link_status:up") {
                return false
            }
        }
        return true
    }

    /// Runs `redis-cli ARGUMENTS...`; returns its exit status and its output.
    @discardableResult
    public func cli(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let tls = tlsAuthorityFile.map { ["--tls", "--cacert", $0] } ?? []
        return try ChildProcess.run(URL(fileURLWithPath: try Self.cliPath()), tls + arguments)
    }

    /// Stops every node and removes its folder.
    public func stop() {
        for node in nodes { node.stop() }
    }

    deinit { stop() }
}
