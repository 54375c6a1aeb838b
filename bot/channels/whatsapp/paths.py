"""Where Twilio reaches Schoolgate: the webhook paths, below PUBLIC_BASE_URL."""

INCOMING_PATH = "/twilio/whatsapp/incoming"
"""A message to the school's number from someone not in a group (set on the WhatsApp sender)."""
PRE_EVENT_PATH = "/twilio/conversations/pre"
"""A group message before it is delivered (the Conversation Service's pre-event webhook)."""
POST_EVENT_PATH = "/twilio/conversations/post"
STATUS_PATH = "/twilio/status"
"""What became of a message we sent (each message's status callback)."""
