import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension RedisError {
    /// Maps what NIO reports for a failed connect to a ``RedisError`` code.
    static func connectFailure(_ error: any Error, endpoint: RedisConfiguration.Endpoint) -> RedisError {
        if let error = error as? RedisError { return error }
        if let error = error as? NIOConnectionError {
            if error.connectionErrors.isEmpty {
                return RedisError(.unknownHost, "could not resolve host '\(error.host)'")
            }
            return connectFailure(error.connectionErrors[0].error, endpoint: endpoint)
        }
        if case ChannelError.connectTimeout = error {
            return RedisError(.connectTimeout, "connecting to \(endpoint) timed out")
        }
        if let error = error as? IOError {
            switch error.errnoCode {
            case ECONNREFUSED, ENOENT:
                return RedisError(.connectionRefused, "nothing accepts connections at \(endpoint)")
            case ETIMEDOUT:
                return RedisError(.connectTimeout, "connecting to \(endpoint) timed out")
            default:
                return RedisError(.connectionRefused, "could not connect to \(endpoint): \(error)")
            }
        }
        if error is SocketAddressError {
            return RedisError(.unknownHost, "could not resolve the address of \(endpoint)")
        }
        return RedisError(.connectionRefused, "could not connect to \(endpoint): \(error)")
    }
}
