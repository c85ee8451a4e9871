"""Error codes of the reminders feature."""
from app.core.errors import register_codes, register_path_objects

register_codes({
    "TEMPLATE_KEY_UNKNOWN": (422, "订阅消息模板不存在"),
    "NOTIFICATION_NOT_FOUND": (404, "消息不存在"),
})

register_path_objects({'notification_id': 'NOTIFICATION_NOT_FOUND'})
