import Logging
import NIOCore
import NIOPosix
import Synchronization

/// One connection to Redis that reconnects by itself, with many commands in flight.
///
/// Commands from any task are encoded into one pending buffer under a lock; the first
/// command after a flush schedules one write-and-flush on the event loop, so a burst of
/// commands costs one system call, not one per command.
final class RedisConnection: Sendable {
    /// Extra behaviour for the subscriber connection.
    struct Hooks: Sendable {
        /// Receives pub/sub message pushes.
        var push: (@Sendable (RedisValue) -> Void)?
        /// Commands to run after AUTH/SELECT on every connect (to restore subscriptions).
        var handshake: (@Sendable () -> [[RedisArgument]])?
        /// Called after a connection other than the first is ready.
        var reconnected: (@Sendable () -> Void)?
        /// Where to connect, asked before every connect (a Sentinel-named master) instead
        /// of the configured endpoints.
        var resolveEndpoint: (@Sendable () async throws -> RedisConfiguration.Endpoint)?
        /// Whether a server must answer `ROLE` with `master` before the connection is used.
        var requiresMasterRole = false

        init(
            push: (@Sendable (RedisValue) -> Void)? = nil,
            handshake: (@Sendable () -> [[RedisArgument]])? = nil,
            reconnected: (@Sendable () -> Void)? = nil,
            resolveEndpoint: (@Sendable () async throws -> RedisConfiguration.Endpoint)? = nil,
            requiresMasterRole: Bool = false
        ) {
            self.push = push
            self.handshake = handshake
            self.reconnected = reconnected
            self.resolveEndpoint = resolveEndpoint
            self.requiresMasterRole = requiresMasterRole
        }
    }

    typealias Link = (channel: any Channel, handler: NIOLoopBound<RedisChannelHandler>)

    private let configuration: RedisConfiguration
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let hooks: Hooks
    private let commandTimeout: TimeAmount
    private let connectTimeout: TimeAmount
    /// TLS for every channel, when configured.
    private let tls: TLSChannelSetup?
    /// Guards the connection's phase and the commands not yet handed to a channel.
    private let state = Mutex(ConnectionStateMachine<Link>())
    /// Where it connects: the configuration's endpoint, then, in turn after each failure or
    /// loss, the cluster's other seeds (a cluster client's subscription moves to another node
    /// when its node fails).
    private let endpoints: [RedisConfiguration.Endpoint]
    private let endpointTurn = Atomic<Int>(0)
    private var endpoint: RedisConfiguration.Endpoint {
        endpoints[endpointTurn.load(ordering: .relaxed) % endpoints.count]
    }
    /// The pending retry after a failed connect, so that close() can cancel it.
    private let retryTask = Mutex<Scheduled<Void>?>(nil)
    /// The channel in use and where it goes, for ``reconnect(unlessConnectedTo:)``.
    private let current = Mutex<(channel: any Channel, endpoint: RedisConfiguration.Endpoint)?>(nil)

    /// - Parameter endpoints: where to connect, in turn after each failure or loss.
    ///   Default: the configuration's endpoint, then its cluster seeds.
    init(
        configuration: RedisConfiguration, eventLoop: any EventLoop, logger: Logger, hooks: Hooks = Hooks(),
        endpoints: [RedisConfiguration.Endpoint]? = nil
    ) {
        self.endpoints = endpoints ?? ([configuration.endpoint] + (configuration.clusterSeeds ?? []))
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.logger = logger
        self.hooks = hooks
        self.commandTimeout = TimeAmount(configuration.commandTimeout)
        self.connectTimeout = TimeAmount(configuration.connectTimeout)
        self.tls = configuration.tls.map(TLSChannelSetup.init)
    }

    /// Queues a command; its reply (or error) goes to `target`.
    func submit(_ arguments: [RedisArgument], to target: ReplyTarget) {
        let deadline = NIODeadline.now() + commandTimeout
        let action = state.withLock { $0.submit(arguments, target: target, deadline: deadline) }
        switch action {
        case .none:
            break
        case .connect:
            connect()
        case .scheduleFlush(let link):
            link.channel.eventLoop.execute { self.flush(link) }
        case .flushIfOnEventLoop(let link):
            if link.channel.eventLoop.inEventLoop { flush(link) }
        case .fail(let error):
            target.fail(error)
        }
    }

    /// Commands accepted for sending so far.
    var commandsAccepted: Int { state.withLock { $0.commandsAccepted } }

    /// Sends a command and waits for its reply.
    nonisolated(nonsending) func send(_ arguments: [RedisArgument]) async throws -> RedisValue {
        // Unsafe rather than checked: the checked kind allocates per call, and every path
        // below resumes exactly once (a reply, a failure, a timeout or the channel closing).
        try await withUnsafeThrowingContinuation { continuation in
            submit(arguments, to: .continuation(continuation))
        }
    }

    /// Sends commands back to back (they go out in one write) and returns every reply or
    /// error, in order.
    nonisolated(nonsending) func pipeline(_ commands: [[RedisArgument]]) async -> [Result<RedisValue, RedisError>] {
        await withUnsafeContinuation { continuation in
            let batch = BatchReplies(count: commands.count, continuation: continuation)
            for (index, command) in commands.enumerated() { submit(command, to: .batch(batch, index: index)) }
        }
    }

    /// Runs on the event loop: writes every command queued since the last flush.
    private func flush(_ link: Link) {
        guard let (bytes, commands) = state.withLock({ $0.takePending() }) else { return }
        link.handler.value.enqueue(commands)
        link.channel.writeAndFlush(bytes, promise: nil)
    }

    // MARK: Connecting

    private func connect() {
        guard let resolve = hooks.resolveEndpoint else { return connect(to: endpoint) }
        eventLoop.makeFutureWithTask { try await resolve() }.whenComplete { result in
            switch result {
            case .success(let endpoint): self.connect(to: endpoint)
            case .failure(let error as RedisError): self.connectFailed(error)
            case .failure(let error): self.connectFailed(RedisError(.connectionRefused, "could not find the server: \(error)"))
            }
        }
    }

    private func connect(to endpoint: RedisConfiguration.Endpoint) {
        logger.debug("connecting to Redis", metadata: ["redis.endpoint": "\(endpoint)"])
        let commandTimeout = self.commandTimeout
        let push = hooks.push
        let tls = self.tls
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls, case .tcp(let host, _) = endpoint { try tls.addHandlers(to: channel, host: host) }
                    try channel.pipeline.syncOperations.addHandler(
                        RedisChannelHandler(commandTimeout: commandTimeout, pushHandler: push))
                }
            }
        let connecting: EventLoopFuture<any Channel>
        switch endpoint {
        case .tcp(let host, let port):
            connecting = bootstrap.connect(host: host, port: port)
        case .unixSocket(let path):
            connecting = bootstrap.connect(unixDomainSocketPath: path)
        }
        connecting
            .flatMap { channel -> EventLoopFuture<Link> in
                do {
                    let handler = try channel.pipeline.syncOperations.handler(type: RedisChannelHandler.self)
                    let link: Link = (channel, NIOLoopBound(handler, eventLoop: channel.eventLoop))
                    let secured = tls?.handshakeCompleted(on: channel, within: self.connectTimeout, endpoint: endpoint)
                        ?? channel.eventLoop.makeSucceededVoidFuture()
                    return secured.flatMap { self.handshake(link) }.map { link }.flatMapError { error in
                        channel.close(promise: nil)
                        return channel.eventLoop.makeFailedFuture(error)
                    }
                } catch {
                    channel.close(promise: nil)
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            .whenComplete { result in
                switch result {
                case .success(let link): self.connected(link, at: endpoint)
                case .failure(let error): self.connectFailed(RedisError.connectFailure(error, endpoint: endpoint))
                }
            }
    }

    /// AUTH, SELECT, CLIENT SETNAME and the hooks' commands, pipelined on the new channel.
    private func handshake(_ link: Link) -> EventLoopFuture<Void> {
        var commands: [[RedisArgument]] = []
        if let password = configuration.password {
            if let username = configuration.username {
                commands.append(["AUTH", RedisArgument(username), RedisArgument(password)])
            } else {
                commands.append(["AUTH", RedisArgument(password)])
            }
        }
        if configuration.database != 0 { commands.append(["SELECT", RedisArgument(configuration.database)]) }
        if let name = configuration.clientName { commands.append(["CLIENT", "SETNAME", RedisArgument(name)]) }
        // Before the hooks' commands: a SUBSCRIBE puts the connection where ROLE is refused.
        if hooks.requiresMasterRole { commands.append(["ROLE"]) }
        let roleReply = commands.count - 1
        commands += hooks.handshake?() ?? []
        let loop = link.channel.eventLoop
        guard !commands.isEmpty else { return loop.makeSucceededVoidFuture() }

        let deadline = NIODeadline.now() + connectTimeout
        var bytes = link.channel.allocator.buffer(capacity: 256)
        var pending: [PendingCommand] = []
        var replies: [EventLoopFuture<RedisValue>] = []
        for command in commands {
            RESPEncoder.encode(command, into: &bytes)
            let promise = loop.makePromise(of: RedisValue.self)
            pending.append(PendingCommand(target: .promise(promise), deadline: deadline))
            replies.append(promise.futureResult)
        }
        link.handler.value.enqueue(pending)
        link.channel.writeAndFlush(bytes, promise: nil)
        let requiresMasterRole = hooks.requiresMasterRole
        return EventLoopFuture.whenAllSucceed(replies, on: loop).flatMapThrowing { values in
            // A failed-over master that has not heard yet, or a Sentinel's stale answer.
            if requiresMasterRole, case .array(let role) = values[roleReply], role.first?.string != "master" {
                throw RedisError(.connectionRefused, "the server the Sentinels named is not a master (ROLE: \(role.first?.string ?? "?")); asking them again")
            }
        }.flatMapErrorThrowing { error in
            guard let error = error as? RedisError else { throw error }
            switch error.code {
            case .serverError where ["WRONGPASS", "NOAUTH", "NOPERM"].contains(error.serverErrorPrefix ?? ""):
                throw RedisError(.authenticationFailed, "Redis refused the credentials: \(error.message)")
            case .serverError:
                throw RedisError(.serverError, "connection set-up failed: \(error.message)")
            case .timeout:
                throw RedisError(.connectTimeout, "connection set-up got no reply within the connect timeout")
            default:
                throw error
            }
        }
    }

    private func connected(_ link: Link, at endpoint: RedisConfiguration.Endpoint) {
        switch state.withLock({ $0.connected(link) }) {
        case .closeLink:
            link.channel.close(promise: nil)
        case .flush(let bytes, let commands, let isReconnect):
            current.withLock { $0 = (link.channel, endpoint) }
            logger.debug("connected to Redis", metadata: ["redis.endpoint": "\(endpoint)"])
            if !commands.isEmpty {
                link.handler.value.enqueue(commands)
                link.channel.writeAndFlush(bytes, promise: nil)
            }
            // Registered only now that the state knows the link: a channel that closed
            // already runs this at once and is replaced.
            link.channel.closeFuture.whenComplete { _ in self.linkClosed(link.channel) }
            if isReconnect { hooks.reconnected?() }
        }
    }

    private func connectFailed(_ error: RedisError) {
        guard let (failed, attempt) = state.withLock({ $0.connectFailed(error) }) else { return }
        for command in failed { command.target?.fail(error) }
        let failedEndpoint = endpoint
        endpointTurn.wrappingAdd(1, ordering: .relaxed)
        let delay = configuration.reconnectBackoff.delay(attempt: attempt)
        logger.debug("could not connect to Redis", metadata: [
            "redis.endpoint": "\(failedEndpoint)", "redis.error": "\(error.message)",
            "redis.retry_in": "\(delay)",
        ])
        let task = eventLoop.scheduleTask(in: TimeAmount(delay)) {
            if self.state.withLock({ $0.retryDue() }) { self.connect() }
        }
        retryTask.withLock { $0 = task }
    }

    private func linkClosed(_ channel: any Channel) {
        guard state.withLock({ $0.linkClosed(isCurrent: { $0.channel === channel }) }) else { return }
        logger.debug("lost the connection to Redis; reconnecting", metadata: ["redis.endpoint": "\(endpoint)"])
        if endpoints.count > 1 { endpointTurn.wrappingAdd(1, ordering: .relaxed) }
        connect()
    }

    /// Closes the channel in use unless it goes to `endpoint`, so that the connection
    /// reconnects (asking ``Hooks/resolveEndpoint`` again): commands in flight on it fail
    /// with ``RedisError/Code/connectionLost``, commands not yet written wait for the new one.
    func reconnect(unlessConnectedTo endpoint: RedisConfiguration.Endpoint?) {
        guard let (channel, connectedTo) = current.withLock({ $0 }), connectedTo != endpoint else { return }
        logger.debug("leaving a server that is no longer the master", metadata: ["redis.endpoint": "\(connectedTo)"])
        channel.close(promise: nil)
    }

    /// Where the channel in use goes, if one is up.
    var connectedEndpoint: RedisConfiguration.Endpoint? { current.withLock { $0?.endpoint } }

    /// Closes the connection; commands not yet sent fail with ``RedisError/Code/clientClosed``,
    /// commands in flight with ``RedisError/Code/connectionLost``.
    func close() async {
        let (link, unsent) = state.withLock { $0.close() }
        retryTask.withLock { $0?.cancel() }
        let error = RedisError(.clientClosed, "the Redis client was shut down")
        for command in unsent { command.target?.fail(error) }
        if let link { try? await link.channel.close() }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
