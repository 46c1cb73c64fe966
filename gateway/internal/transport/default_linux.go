package transport

// DefaultTransport is the transport of a Config that names none.
const DefaultTransport = Epoll
