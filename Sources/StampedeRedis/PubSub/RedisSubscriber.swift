import Logging
import NIOCore
import Synchronization

/// The client's pub/sub side: one dedicated connection shared by every subscription.
///
/// Channels are reference-counted: the first local subscription to a channel sends
/// `SUBSCRIBE`, the last one to leave sends `UNSUBSCRIBE`. After a reconnect every channel
/// is subscribed again before the connection is used, and every subscription is told that
/// messages may have been missed.
final class RedisSubscriber: Sendable {
    typealias Continuation = AsyncThrowingStream<RedisSubscriptionEvent, any Error>.Continuation

    /// One local subscription: its stream, or what runs on the event loop as each event
    /// arrives, in which case the stream only ends.
    struct Subscriber: Sendable {
        let continuation: Continuation
        let onArrival: (@Sendable (RedisSubscriptionEvent) -> Void)?

        func deliver(_ event: RedisSubscriptionEvent) {
            // Not both: events the handler took would pile up in a stream nobody needs to read.
            if let onArrival { onArrival(event) } else { continuation.yield(event) }
        }
    }

    /// Local subscriptions by channel. Lock order: this lock, then the connection's.
    private final class Registry: Sendable {
        struct State {
            var channels: [String: [Int: Subscriber]] = [:]
            var nextID = 0
            var isClosed = false

            var allSubscriptions: [Int: Subscriber] {
                channels.values.reduce(into: [:]) { all, byID in all.merge(byID) { first, _ in first } }
            }
        }
        let state = Mutex(State())

        /// The subscriptions on `channel`, or every subscription once (a subscription to
        /// several channels is listed under each).
        func subscribers(for channel: String?) -> [Subscriber] {
            state.withLock { state in
                if let channel { return Array(state.channels[channel]?.values ?? [:].values) }
                return Array(state.allSubscriptions.values)
            }
        }
    }

    private let registry = Registry()
    let connection: RedisConnection
    private let eventLoop: any EventLoop

    /// - Parameters:
    ///   - endpoints: where to connect, in turn after each failure (default: the
    ///     configuration's endpoint and cluster seeds).
    ///   - resolveEndpoint, requiresMasterRole: for a Sentinel-named master; see
    ///     ``RedisConnection/Hooks``.
    init(
        configuration: RedisConfiguration, eventLoop: any EventLoop, logger: Logger,
        endpoints: [RedisConfiguration.Endpoint]? = nil,
        resolveEndpoint: (@Sendable () async throws -> RedisConfiguration.Endpoint)? = nil,
        requiresMasterRole: Bool = false
    ) {
        let registry = self.registry
        self.eventLoop = eventLoop
        self.connection = RedisConnection(
            configuration: configuration, eventLoop: eventLoop, logger: logger,
            hooks: .init(
                push: { value in
                    // ["message", channel, payload]
                    guard case .array(let parts) = value, parts.count == 3,
                          let channel = parts[1].string, let payload = parts[2].bytes else { return }
                    let event = RedisSubscriptionEvent.message(RedisPubSubMessage(channel: channel, payload: payload))
                    for subscriber in registry.subscribers(for: channel) { subscriber.deliver(event) }
                },
                handshake: {
                    registry.state.withLock { state in state.channels.keys.map { ["SUBSCRIBE", RedisArgument($0)] } }
                },
                reconnected: {
                    logger.debug("pub/sub connection restored; subscriptions told that messages may have been missed")
                    for subscriber in registry.subscribers(for: nil) { subscriber.deliver(.messagesMayHaveBeenMissed) }
                },
                resolveEndpoint: resolveEndpoint,
                requiresMasterRole: requiresMasterRole
            ),
            endpoints: endpoints)
    }

    func subscribe<Result>(
        to channels: [String],
        onArrival: (@Sendable (RedisSubscriptionEvent) -> Void)?,
        _ body: (RedisSubscription) async throws -> Result
    ) async throws -> Result {
        guard !channels.isEmpty else { throw RedisError(.invalidArgument, "subscribe needs at least one channel") }
        let unique = Array(Set(channels))
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: RedisSubscriptionEvent.self)

        // Register locally and queue SUBSCRIBE for channels new to this client, under one
        // lock so that a concurrent last UNSUBSCRIBE cannot overtake it.
        let (id, confirmations) = try registry.state.withLock { state throws(RedisError) -> (Int, [EventLoopFuture<RedisValue>]) in
            guard !state.isClosed else { throw RedisError(.clientClosed, "the Redis client was shut down") }
            let id = state.nextID
            state.nextID += 1
            var confirmations: [EventLoopFuture<RedisValue>] = []
            for channel in unique {
                if state.channels[channel] == nil {
                    let promise = eventLoop.makePromise(of: RedisValue.self)
                    connection.submit(["SUBSCRIBE", RedisArgument(channel)], to: .promise(promise))
                    confirmations.append(promise.futureResult)
                }
                state.channels[channel, default: [:]][id] = Subscriber(continuation: continuation, onArrival: onArrival)
            }
            return (id, confirmations)
        }

        do {
            for confirmation in confirmations { _ = try await confirmation.get() }
        } catch {
            await leave(id: id, channels: unique, continuation: continuation)
            throw error
        }
        do {
            let result = try await body(RedisSubscription(stream: stream))
            await leave(id: id, channels: unique, continuation: continuation)
            return result
        } catch {
            await leave(id: id, channels: unique, continuation: continuation)
            throw error
        }
    }

    /// Removes one subscription; channels it was the last one on are unsubscribed
    /// (best effort: a failure only means the server sends messages nobody reads).
    private func leave(id: Int, channels: [String], continuation: Continuation) async {
        continuation.finish()
        let confirmations = registry.state.withLock { state -> [EventLoopFuture<RedisValue>] in
            var confirmations: [EventLoopFuture<RedisValue>] = []
            for channel in channels {
                state.channels[channel]?[id] = nil
                if state.channels[channel]?.isEmpty == true {
                    state.channels[channel] = nil
                    if state.isClosed { continue }
                    let promise = eventLoop.makePromise(of: RedisValue.self)
                    connection.submit(["UNSUBSCRIBE", RedisArgument(channel)], to: .promise(promise))
                    confirmations.append(promise.futureResult)
                }
            }
            return confirmations
        }
        for confirmation in confirmations { _ = try? await confirmation.get() }
    }

    /// Ends every subscription with ``RedisError/Code/clientClosed`` and closes the connection.
    func close() async {
        let continuations = registry.state.withLock { state in
            state.isClosed = true
            return state.allSubscriptions.values.map(\.continuation)
        }
        let error = RedisError(.clientClosed, "the Redis client was shut down")
        for continuation in continuations { continuation.finish(throwing: error) }
        await connection.close()
    }
}

extension RedisClient {
    /// Subscribes to channels for the duration of `body`.
    ///
    /// When this returns, the channels are subscribed on the server: a message published
    /// afterwards is delivered. Leaving `body` (by returning or throwing) unsubscribes.
    ///
    /// ```swift
    /// try await client.subscribe(to: ["fills"]) { events in
    ///     for try await event in events {
    ///         switch event {
    ///         case .message(let message): handle(message.payload)
    ///         case .messagesMayHaveBeenMissed: resynchronise()
    ///         }
    ///     }
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - channels: the channels, at least one.
    ///   - onArrival: when given, receives every event instead of `body`'s sequence, as it
    ///     arrives, on the connection's event loop: for short work that must not wait for a
    ///     task to be scheduled (dropping a cached value that a message made stale). It must
    ///     not block. The sequence then yields nothing and only ends, with the subscription.
    ///   - body: reads the events; the subscription lasts while it runs.
    /// - Throws: ``RedisError`` when the subscription cannot be made (for example Redis is
    ///   unreachable), or what `body` throws.
    public func subscribe<Result>(
        to channels: [String],
        onArrival: (@Sendable (RedisSubscriptionEvent) -> Void)? = nil,
        _ body: (RedisSubscription) async throws -> Result
    ) async throws -> Result {
        try await subscriber.subscribe(to: channels, onArrival: onArrival, body)
    }

    /// Publishes a message; returns how many subscribers received it.
    @discardableResult
    public func publish(_ payload: [UInt8], to channel: String) async throws -> Int {
        try await send("PUBLISH", RedisArgument(channel), RedisArgument(bytes: payload)).int ?? 0
    }
}
