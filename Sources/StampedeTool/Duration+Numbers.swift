extension Duration {
    /// The duration in seconds, as a `Double`.
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
    /// The duration in milliseconds, as a `Double`.
    var inMilliseconds: Double { inSeconds * 1000 }
}
