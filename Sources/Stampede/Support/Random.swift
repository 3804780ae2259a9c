import Synchronization

/// SplitMix64: a small, fast, seedable generator (Steele, Lea and Flood), for draws that
/// need no cryptographic quality: early-refresh draws here, the storm tools' key picks.
package struct SplitMix64: RandomNumberGenerator {
    /// Added to the state for every draw.
    static let increment: UInt64 = 0x9E37_79B9_7F4A_7C15

    private var state: UInt64

    package init(seed: UInt64) { state = seed }

    package mutating func next() -> UInt64 {
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

/// Uniform draws for early refresh on every lookup: SplitMix64 over one atomic counter,
/// seeded once from the system. The system generator makes a system call per draw; a draw
/// that only spreads refreshes over time needs no cryptographic quality.
enum EarlyRefreshRandom {
    private static let state = Atomic<UInt64>(UInt64.random(in: .min ... .max))

    /// A number in (0, 1].
    static func uniform() -> Double {
        let z = SplitMix64.mix(state.wrappingAdd(SplitMix64.increment, ordering: .relaxed).newValue)
        return Double((z >> 11) + 1) * 0x1p-53
    }
}
