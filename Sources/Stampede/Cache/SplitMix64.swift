/// SplitMix64: a small, fast, seedable generator (Steele, Lea and Flood), for draws that
/// need no cryptographic quality: early-refresh draws here, the storm tools' key picks.
@_spi(Benchmarks)
public struct SplitMix64: RandomNumberGenerator {
    /// Added to the state for every draw.
    static let increment: UInt64 = 0x9E37_79B9_7F4A_7C15

    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= Self.increment
        return Self.mix(state)
    }

    /// The output for a state: callers that advance the state elsewhere (an atomic shared
    /// by every thread) mix it here.
    static func mix(_ state: UInt64) -> UInt64 {
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
