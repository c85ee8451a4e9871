"""Error codes of background jobs. JOB_FAILED and JOB_INTERRUPTED are never an HTTP answer of
their own: they are the `error` a failed job shows (their status says how serious it is)."""
from app.core.errors import register_codes, register_path_objects

FAILED_MESSAGE = "任务失败，请重试"
INTERRUPTED_MESSAGE = "任务执行进程中断（已自动重试一次）"

register_codes({
    "JOB_NOT_FOUND": (404, "任务不存在"),
    "JOB_NOT_FINISHED": (409, "任务尚未完成，请等待完成后再下载"),
    "JOB_RESULT_EXPIRED": (410, "生成的文件已超过保存期限并已删除，请重新生成"),
    "JOB_NOT_RETRYABLE": (409, "只有失败的任务可以重试"),
    "JOB_FAILED": (500, FAILED_MESSAGE),
    "JOB_INTERRUPTED": (500, INTERRUPTED_MESSAGE),
    "JOB_UPLOAD_TOO_LARGE": (413, "上传的文件过大，请拆分后分批提交"),
    "JOB_UPLOAD_EMPTY": (422, "上传的文件是空的"),
    "JOB_INPUT_MISSING": (410, "提交的文件已不在服务器上，请重新上传"),
})

register_path_objects({"job_id": "JOB_NOT_FOUND"})
