"""The transports behind one seam: ``base`` (the Transport protocol, its options,
limits and defaults; it imports neither implementation), ``picows`` (the default) and
``websockets`` (public API only), and ``choose`` (which one an Agent or a
FishjamNotifier uses, and the options both share). The session core imports this layer;
it imports only the codec below it."""
