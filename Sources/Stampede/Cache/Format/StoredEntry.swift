/// An entry as stored in Redis (see ``CacheFormat``). Times are milliseconds since the
/// epoch by Redis's clock.
@_spi(Benchmarks)
public struct StoredEntry: Sendable, Equatable {
    public var value: [UInt8]
    public var freshUntil: Int
    public var staleUntil: Int
    /// How long the load that filled it took, ms: early refresh weighs it.
    public var loadDuration: Int
    public var isNegative: Bool

    public init(value: [UInt8], freshUntil: Int, staleUntil: Int, loadDuration: Int = 0, isNegative: Bool = false) {
        self.value = value
        self.freshUntil = freshUntil
        self.staleUntil = staleUntil
        self.loadDuration = loadDuration
        self.isNegative = isNegative
    }

    /// The value to hand out: `nil` for a cached "no such value".
    var bytes: [UInt8]? { isNegative ? nil : value }
}
