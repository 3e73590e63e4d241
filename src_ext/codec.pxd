# Declarations of the codec layer (included by _ext.pyx before codec.pyx).

# AgentRequest keys (field << 3 | WT_LEN): the oneof members.
cdef enum:
    KEY_AUTH_REQUEST = 0x0A
    KEY_ADD_TRACK = 0x12
    KEY_REMOVE_TRACK = 0x1A
    KEY_TRACK_DATA = 0x22
    KEY_INTERRUPT_TRACK = 0x2A
    KEY_CAPTURE_IMAGE = 0x32
    KEY_FIELD1_LEN = 0x0A    # field 1, length-delimited
    KEY_FIELD2_LEN = 0x12    # field 2, length-delimited
    KEY_FIELD3_LEN = 0x1A    # field 3, length-delimited
    KEY_FIELD1_VARINT = 0x08
    KEY_FIELD2_VARINT = 0x10
    KEY_FIELD3_VARINT = 0x18
