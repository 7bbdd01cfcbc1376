"""What the provider answers when it accepts a call, as its documentation shows."""

QUEUED = {
    "status": "OK",
    "message": "Calls queued successfully",
    "data": [
        {
            "id": "3b69aca9-3b55-4e2d-bfe0-02b910dbe156",
            "credits": 1,
            "status": "queued",
            "created_at": "2024-07-10T06:09:43.054164Z",
        }
    ],
}


CURRENT = {
    "status": "OK",
    "message": "Calls queued successfully",
    "data": [
        {
            "id": "3b69aca9-3b55-4e2d-bfe0-02b910dbe156",
            "channel": "outgoing",
            "caller_id": "918068287602",
            "mobile": "918867135123",
            "flow_id": "24",
            "credits": 1,
            "created_at": "2024-07-10T06:09:43.054164Z",
            "foreign_id": None,
            "options": None,
            "status": "queued",
        }
    ],
}
