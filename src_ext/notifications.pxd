# Declarations of the server-notification decoder (notifications.pyx): Fishjam's
# ServerMessage (protos/fishjam_fast/_proto/server_notifications.proto).

# What a member's field holds: the decoder's kinds (fishjam_fast.events.SCHEMA's kinds).
cdef enum:
    NK_STR = 1          # a proto3 string
    NK_ENDPOINT = 2     # a string of the oneof endpoint_info (fields 2 and 3)
    NK_TRACK = 3        # a fishjam.notifications.Track, Track() when absent
    NK_OPT_TRACK = 4    # the same, None when absent
    NK_BATCH = 5        # repeated ServerMessage: the batch's notifications
    NK_ENUM = 6         # an open int32 enum: its member, or the plain int
    NM_BATCH_FIELD = 33 # ServerMessage.notification_batch
    NM_MAX_DEPTH = 16   # batches nested deeper are refused (Fishjam never nests them)
