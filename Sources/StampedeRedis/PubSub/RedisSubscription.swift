/// A message published on a channel.
public struct RedisPubSubMessage: Sendable, Hashable {
    public let channel: String
    public let payload: [UInt8]

    public init(channel: String, payload: [UInt8]) {
        self.channel = channel
        self.payload = payload
    }
}

/// What a subscription delivers.
public enum RedisSubscriptionEvent: Sendable, Hashable {
    case message(RedisPubSubMessage)
    /// The subscriber connection dropped and was restored, with every channel subscribed
    /// again; messages published in between were not received. Re-read whatever the
    /// messages would have told you.
    case messagesMayHaveBeenMissed
}

/// The events of one scoped subscription, in the order they arrived.
///
/// Iteration ends with an error when the client shuts down; leaving the scope of
/// ``RedisClient/subscribe(to:_:)`` unsubscribes.
public struct RedisSubscription: AsyncSequence, Sendable {
    public typealias Element = RedisSubscriptionEvent
    let stream: AsyncThrowingStream<RedisSubscriptionEvent, any Error>

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<RedisSubscriptionEvent, any Error>.AsyncIterator
        public mutating func next() async throws -> RedisSubscriptionEvent? { try await base.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: stream.makeAsyncIterator()) }
}
