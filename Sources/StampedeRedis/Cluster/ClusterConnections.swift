import Logging
import NIOCore
import Synchronization

/// The I/O shell of a ``RedisClient`` in a Redis Cluster: a connection per node, opened on
/// first use, and the cluster's topology, asked of the nodes on first use, again after a
/// `MOVED` or a node that could not be reached, and every
/// ``RedisConfiguration/clusterRefreshInterval``. Each command goes where its
/// ``ClusterRoute`` and ``ClusterCommandMachine`` say.
final class ClusterConnections: Sendable {
    private let configuration: RedisConfiguration
    /// Every node's connection runs on this loop, the client's executor's: a caller's
    /// command reaches any node without a hop to another thread.
    private let eventLoop: any EventLoop
    private let logger: Logger

    private struct State {
        var topology = ClusterTopology(shards: [])
        var connections: [ClusterNodeAddress: RedisConnection] = [:]
        /// The topology refresh under way, which callers that need one wait for.
        var refresh: Task<Void, Never>?
        /// Asks for the topology every refresh interval, from the first command on.
        var periodicRefresh: Task<Void, Never>?
        var isClosed = false
    }

    private let state = Mutex(State())

    init(configuration: RedisConfiguration, eventLoop: any EventLoop, logger: Logger) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
    }

    /// The nodes asked for the topology: the masters as last known, then the seeds.
    private var nodesToAsk: [ClusterNodeAddress] {
        let seeds = ([configuration.endpoint] + (configuration.clusterSeeds ?? [])).compactMap { seed -> ClusterNodeAddress? in
            guard case .tcp(let host, let port) = seed else { return nil }
            return ClusterNodeAddress(host: host, port: port)
        }
        var seen = Set<ClusterNodeAddress>()
        return (state.withLock { $0.topology.masters } + seeds).filter { seen.insert($0).inserted }
    }

    /// The connection to `node`, opened on first use.
    private func connection(to node: ClusterNodeAddress) throws(RedisError) -> RedisConnection {
        let connection = state.withLock { state -> RedisConnection? in
            if state.isClosed { return nil }
            if let open = state.connections[node] { return open }
            let connection = RedisConnection(configuration: configuration.node(node), eventLoop: eventLoop, logger: logger)
            state.connections[node] = connection
            return connection
        }
        guard let connection else { throw RedisError(.clientClosed, "the Redis client was shut down") }
        return connection
    }

    /// Sends one command where it belongs (or where `route` says, for a command without keys
    /// that belongs to a key's node), following redirections.
    func send(_ arguments: [RedisArgument], route: ClusterRoute? = nil) async throws -> RedisValue {
        let route = try route ?? ClusterRoute(command: arguments)
        return try await run(route) { connection, asking in
            if asking {
                let replies = await connection.pipeline([["ASKING"], arguments])
                return try replies[1].get()
            }
            return try await connection.send(arguments)
        }
    }

    /// The masters as known, asking for the topology first when none is known.
    func masters() async throws(RedisError) -> [ClusterNodeAddress] {
        if topology.shards.isEmpty { await refreshTopology() }
        let masters = topology.masters
        guard !masters.isEmpty else {
            throw RedisError(.connectionRefused, "no node of the cluster answered with its layout (asked: \(nodesToAsk.map(\.description).joined(separator: ", ")))")
        }
        return masters
    }

    /// Sends one command to `node`, a master as known, without following redirections.
    func send(_ arguments: [RedisArgument], toNode node: ClusterNodeAddress) async throws -> RedisValue {
        guard topology.masters.contains(node) else {
            throw RedisError(.invalidArgument, "\(node) is not a master of the cluster as known (\(topology.masters.map(\.description).joined(separator: ", ")))")
        }
        return try await connection(to: node).send(arguments)
    }

    /// Sends commands back to back to the node of their keys. A command that a node
    /// redirected, or that did not run there (`TRYAGAIN`, `CLUSTERDOWN`...), is sent again by
    /// itself, as ``send(_:)`` would; the others keep their replies.
    func pipeline(_ commands: [[RedisArgument]]) async throws -> [Result<RedisValue, RedisError>] {
        let route = try ClusterRoute(pipeline: commands)
        var replies = try await run(route) { connection, asking in
            if asking { return Array(await connection.pipeline([["ASKING"]] + commands).dropFirst()) }
            return await connection.pipeline(commands)
        }
        for (index, reply) in replies.enumerated() {
            guard case .failure(let error) = reply, error.code == .serverError,
                  ClusterReply(errorMessage: error.message) != .error
            else { continue }
            do { replies[index] = .success(try await send(commands[index])) } catch let error as RedisError { replies[index] = .failure(error) }
        }
        return replies
    }

    /// Carries out one command's ``ClusterCommandMachine``.
    private func run<Reply>(
        _ route: ClusterRoute, _ send: (RedisConnection, _ asking: Bool) async throws -> Reply
    ) async throws -> Reply {
        let clock = ContinuousClock()
        var machine = ClusterCommandMachine(route: route, deadline: clock.now + configuration.commandTimeout)
        var topology = state.withLock { $0.topology }
        if topology.shards.isEmpty {
            startPeriodicRefresh()
            await refreshTopology()
            topology = state.withLock { $0.topology }
        }
        var action = machine.resume(topology: topology, anyNode: anyNode(), at: clock.now)
        while true {
            switch action {
            case .send(let node, let asking):
                do {
                    return try await send(try connection(to: node), asking)
                } catch let error as RedisError {
                    let now = clock.now
                    let (next, moved) = state.withLock { state -> (ClusterCommandMachine.Action, Bool) in
                        let before = state.topology
                        let next = machine.failed(with: error, at: now, topology: &state.topology)
                        return (next, state.topology != before)
                    }
                    if moved { startRefresh() }
                    action = next
                }
            case .pause(let pause):
                try await Task.sleep(for: pause)
                action = machine.resume(topology: state.withLock { $0.topology }, anyNode: anyNode(), at: clock.now)
            case .refreshTopology:
                await refreshTopology()
                action = machine.resume(topology: state.withLock { $0.topology }, anyNode: anyNode(), at: clock.now)
            case .fail(let error):
                throw error
            }
        }
    }

    /// A node for a command without keys: a master, in turn.
    private func anyNode() -> ClusterNodeAddress? {
        let masters = state.withLock { $0.topology.masters }
        return masters.randomElement() ?? nodesToAsk.first
    }

    private func startPeriodicRefresh() {
        let interval = configuration.clusterRefreshInterval
        state.withLock { state in
            guard !state.isClosed, state.periodicRefresh == nil else { return }
            // Holds the client weakly: a client dropped without shutdown() stops refreshing.
            state.periodicRefresh = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    guard let self, !Task.isCancelled else { return }
                    await self.refreshTopology()
                }
            }
        }
    }

    /// Asks the cluster for its topology again, in the background, unless that is under way.
    private func startRefresh() {
        _ = ensureRefresh()
    }

    /// Asks the cluster for its topology again, or waits for the refresh under way.
    func refreshTopology() async {
        await ensureRefresh()?.value
    }

    private func ensureRefresh() -> Task<Void, Never>? {
        state.withLock { state -> Task<Void, Never>? in
            if state.isClosed { return nil }
            if let running = state.refresh { return running }
            let refresh = Task { await self.askForTopology() }
            state.refresh = refresh
            return refresh
        }
    }

    /// `CLUSTER SHARDS` of the first node that answers with a topology that covers every
    /// slot (else the most complete one heard).
    private func askForTopology() async {
        var best: ClusterTopology?
        for node in nodesToAsk {
            do {
                let reply = try await connection(to: node).send(["CLUSTER", "SHARDS"])
                let topology = try ClusterTopology(shardsReply: reply, usesTLS: configuration.tls != nil)
                if topology.coversEverySlot {
                    best = topology
                    break
                }
                if best == nil { best = topology }
            } catch {
                logger.debug("could not read the cluster's layout", metadata: ["redis.node": "\(node)", "redis.error": "\(error)"])
            }
        }
        state.withLock { state in
            if let best { state.topology = best }
            state.refresh = nil
        }
    }

    /// How many commands went out on every node's connection.
    var commandsAccepted: Int {
        state.withLock { Array($0.connections.values) }.reduce(0) { $0 + $1.commandsAccepted }
    }

    /// The topology as last known.
    var topology: ClusterTopology { state.withLock { $0.topology } }

    func close() async {
        let (connections, refresh) = state.withLock { state in
            state.isClosed = true
            state.periodicRefresh?.cancel()
            return (Array(state.connections.values), state.refresh)
        }
        await refresh?.value
        for connection in connections { await connection.close() }
    }
}
