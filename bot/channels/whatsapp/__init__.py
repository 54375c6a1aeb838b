"""The WhatsApp channel, through Twilio: hosted class groups (Conversations), the report line and
alerts (Programmable Messaging), and the signature check every Twilio webhook must pass."""
