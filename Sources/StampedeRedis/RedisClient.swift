import Logging
import NIOCore
import NIOPosix
import Synchronization
import Tracing

/// An async Redis client: a few pipelined connections shared by every task.
///
/// ```swift
/// let client = try RedisClient(configuration: RedisConfiguration(url: "redis://localhost:6379"))
/// defer { Task { await client.shutdown() } }
/// try await client.send("SET", "greeting", "hello")
/// let value = try await client.send("GET", "greeting").string
/// ```
///
/// Connections open on first use and reconnect by themselves with backoff. A command in
/// flight when its connection dies fails with ``RedisError/Code/connectionLost``; while
/// Redis cannot be reached, commands fail at once with the connect error; once it is back,
/// commands succeed again. Each command waits at most
/// ``RedisConfiguration/commandTimeout`` for its reply.
///
/// Task cancellation does not withdraw a command already queued: it completes or times out.
///
/// With a cluster configuration (``RedisConfiguration/cluster(seeds:)``, or a
/// `redis+cluster://` URL) each command goes to the master of its keys' hash slot, and
/// redirections and "try again" replies are followed within the command's timeout (see
/// ``ClusterRoute``).
///
/// With a Sentinel configuration (``RedisConfiguration/sentinel(masterName:sentinels:)``, or
/// a `redis+sentinel://` URL) every connection goes to the master the Sentinels name, checks
/// with `ROLE` that it is one, and moves when they announce another (`+switch-master`, or
/// their answer to a periodic question); a `READONLY` reply makes its connection look again.
public final class RedisClient: Sendable {
    public let configuration: RedisConfiguration
    let logger: Logger
    private let connections: [RedisConnection]
    /// Round-robin cursor over `connections`.
    private let nextConnection = Atomic<Int>(0)
    /// The pub/sub connection, opened by the first subscription.
    let subscriber: RedisSubscriber
    /// Runs tasks on the first connection's event loop (see ``taskExecutor``).
    let executor: EventLoopTaskExecutor
    /// In a Redis Cluster: the connection per node and the topology that routes commands.
    let cluster: ClusterConnections?
    /// Under Sentinel: where the master is, and word when it moves.
    let sentinel: SentinelMonitor?
    /// Where a span per command goes, if anywhere.
    let tracer: (any Tracer)?

    /// Creates a client; no connection opens until the first command.
    ///
    /// - Parameters:
    ///   - configuration: where and how to connect.
    ///   - eventLoopGroup: the event loops for the connections. Default: NIO's shared group.
    ///   - logger: receives connection events at debug level, a Sentinel's switch as info.
    ///     Default: a `stampede.redis` logger of the global `LoggingSystem`.
    ///   - tracer: where a client span per command (and per pipeline) goes, named after the
    ///     command, with `db.system` and `db.operation` (never its keys or values); `nil` for
    ///     none, at no cost per command. Default: `nil`.
    /// - Throws: ``RedisError`` with ``RedisError/Code/invalidArgument`` when the
    ///   configuration is out of range.
    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "stampede.redis"),
        tracer: (any Tracer)? = nil
    ) throws(RedisError) {
        try configuration.validate()
        self.tracer = tracer
        self.configuration = configuration
        self.logger = logger
        let loops = (0..<configuration.connectionCount).map { _ in eventLoopGroup.next() }
        self.executor = EventLoopTaskExecutor(eventLoop: loops[0])
        self.cluster = configuration.isCluster
            ? ClusterConnections(configuration: configuration, eventLoop: loops[0], logger: logger) : nil
        guard configuration.sentinel != nil else {
            self.connections = loops.map { RedisConnection(configuration: configuration, eventLoop: $0, logger: logger) }
            self.subscriber = RedisSubscriber(configuration: configuration, eventLoop: eventLoopGroup.next(), logger: logger)
            self.sentinel = nil
            return
        }
        // Under Sentinel every connection asks where the master is before it connects, checks
        // that it is one, and leaves it when the Sentinels name another.
        let following = Mutex<[RedisConnection]>([])
        let sentinel = SentinelMonitor(configuration: configuration, eventLoop: loops[0], logger: logger) { master in
            for connection in following.withLock({ $0 }) { connection.reconnect(unlessConnectedTo: master) }
        }
        let resolve: @Sendable () async throws -> RedisConfiguration.Endpoint = { try await sentinel.masterAddress() }
        self.connections = loops.map {
            RedisConnection(configuration: configuration, eventLoop: $0, logger: logger,
                            hooks: .init(resolveEndpoint: resolve, requiresMasterRole: true))
        }
        self.subscriber = RedisSubscriber(
            configuration: configuration, eventLoop: eventLoopGroup.next(), logger: logger,
            resolveEndpoint: resolve, requiresMasterRole: true)
        self.sentinel = sentinel
        following.withLock { $0 = connections + [subscriber.connection] }
    }

    /// Sends one command and returns its reply.
    ///
    /// Runs on the caller's executor (`nonisolated(nonsending)`): the command is queued there,
    /// with no hop to the global executor and back.
    ///
    /// - Parameter arguments: the command name and its arguments, each binary-safe.
    /// - Returns: the reply; an error reply is thrown instead.
    /// - Throws: ``RedisError``: ``RedisError/Code/serverError`` with the server's text,
    ///   ``RedisError/Code/timeout``, ``RedisError/Code/connectionLost``, or the connect error.
    @discardableResult
    nonisolated(nonsending) public func send(_ arguments: [RedisArgument]) async throws -> RedisValue {
        guard !arguments.isEmpty else { throw RedisError(.invalidArgument, "a command needs at least its name") }
        guard let tracer else { return try await dispatch(arguments) }
        let name = ClusterRoute.name(of: arguments)
        return try await tracer.withAnySpan(name, ofKind: .client) { span in
            span.attributes["db.system"] = "redis"
            span.attributes["db.operation"] = name
            return try await dispatch(arguments)
        }
    }

    @inline(__always)
    nonisolated(nonsending) private func dispatch(_ arguments: [RedisArgument]) async throws -> RedisValue {
        if let cluster { return try await cluster.send(arguments) }
        let connection = connection()
        guard sentinel != nil else { return try await connection.send(arguments) }
        do {
            return try await connection.send(arguments)
        } catch let error as RedisError where error.serverErrorPrefix == "READONLY" {
            // A master demoted to a replica: look again, and go where the Sentinels say.
            connection.reconnect(unlessConnectedTo: nil)
            throw error
        }
    }

    /// Sends several commands back to back on one connection, without waiting for each reply
    /// in turn, and returns each command's reply or error, in order. The commands are not a
    /// transaction: other clients' commands may run between them.
    nonisolated(nonsending) public func pipeline(_ commands: [[RedisArgument]]) async throws -> [Result<RedisValue, RedisError>] {
        guard !commands.isEmpty, commands.allSatisfy({ !$0.isEmpty }) else {
            throw RedisError(.invalidArgument, "a pipeline needs at least one command, each with its name")
        }
        guard let tracer else {
            if let cluster { return try await cluster.pipeline(commands) }
            return await connection().pipeline(commands)
        }
        return try await tracer.withAnySpan("PIPELINE", ofKind: .client) { span in
            span.attributes["db.system"] = "redis"
            span.attributes["db.operation"] = commands.map { ClusterRoute.name(of: $0) }.joined(separator: " ")
            if let cluster { return try await cluster.pipeline(commands) }
            return await connection().pipeline(commands)
        }
    }

    /// Sends one command and returns its reply. See ``send(_:)-([RedisArgument])``.
    @discardableResult
    nonisolated(nonsending) public func send(_ arguments: RedisArgument...) async throws -> RedisValue {
        try await send(arguments)
    }

    /// The servers that hold this client's keys: its one server, or every master of its
    /// cluster (asking the cluster for its layout first when none is known yet). For work
    /// that concerns every server rather than one key: `SCAN`, `INFO`, `DBSIZE`.
    ///
    /// - Throws: ``RedisError`` when no node of a cluster answers with its layout.
    public func masters() async throws -> [RedisConfiguration.Endpoint] {
        guard let cluster else { return [configuration.endpoint] }
        return try await cluster.masters().map { .tcp(host: $0.host, port: $0.port) }
    }

    /// Sends one command to `server`, one of ``masters()``, whatever keys it names: a
    /// redirection is the caller's error, not followed.
    ///
    /// - Throws: ``RedisError/Code/invalidArgument`` when `server` is not one of this
    ///   client's servers; otherwise as ``send(_:)-([RedisArgument])``.
    @discardableResult
    public func send(_ arguments: [RedisArgument], to server: RedisConfiguration.Endpoint) async throws -> RedisValue {
        guard !arguments.isEmpty else { throw RedisError(.invalidArgument, "a command needs at least its name") }
        guard let cluster else {
            guard server == configuration.endpoint else {
                throw RedisError(.invalidArgument, "\(server) is not this client's server (\(configuration.endpoint))")
            }
            return try await connection().send(arguments)
        }
        guard case .tcp(let host, let port) = server else {
            throw RedisError(.invalidArgument, "a cluster node is a TCP host and port, got \(server)")
        }
        return try await cluster.send(arguments, toNode: ClusterNodeAddress(host: host, port: port))
    }

    /// The connection for the next command, in turn.
    func connection() -> RedisConnection {
        connections.count == 1 ? connections[0] : connections[nextConnection.wrappingAdd(1, ordering: .relaxed).oldValue % connections.count]
    }

    /// How many commands this client has sent so far, on every connection including pub/sub
    /// (connection set-up not included). Storm reports use it to count round trips.
    package var commandsSent: Int {
        connections.reduce(subscriber.connection.commandsAccepted + (cluster?.commandsAccepted ?? 0)) { $0 + $1.commandsAccepted }
    }

    /// Under Sentinel: the master the Sentinels last named (`nil` before the first connect,
    /// and without Sentinel).
    public var sentinelMaster: RedisConfiguration.Endpoint? { sentinel?.master }

    /// Closes every connection and ends every subscription. Commands sent afterwards fail
    /// with ``RedisError/Code/clientClosed``.
    public func shutdown() async {
        await sentinel?.close()
        for connection in connections { await connection.close() }
        await cluster?.close()
        await subscriber.close()
    }
}
