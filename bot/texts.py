"""What the bot says, in Korean (해요체) first and English second, with number and distance formatting."""

from __future__ import annotations

from typing import Any

from market.messages import fill

TEXTS: dict[str, tuple[str, str]] = {
    "help": (
        "제가 할 수 있는 일이에요.\n{lines}\n명령어 뒤에 /help를 붙이면 자세한 사용법을 알려 드려요.",
        "Here is what I can do.\n{lines}\nType a command's name after /help for its usage.",
    ),
    "unknown_command": ("'{given}' 명령어는 몰라요. {hint}/help로 명령어 목록을 볼 수 있어요.",
                        "I don't know the command '{given}'. {hint}Type /help to see the commands."),
    "did_you_mean": ("{command|을} 찾으셨나요? ", "Did you mean {command}? "),
    "bad_args": ("{reason}\n사용법: {usage}", "{reason}\nUsage: {usage}"),
    "need_keyword": ("찾을 물건 이름을 알려 주세요.", "Tell me what to look for."),
    "bad_distance": ("거리는 500m, 3km처럼 50km 이내로 알려 주세요.",
                     "Give the distance like 500m or 3km (at most 50 km)."),
    "bad_item_number": ("물건 번호는 숫자로 알려 주세요. 카드에 적힌 #번호예요.",
                        "The item number is a number: the #number on a card."),
    "unknown_place": ("{place|은} 어디인지 모르겠어요. 역삼동, 강남구처럼 동이나 구 이름으로 알려 주세요.",
                      "I don't know where '{place}' is. Name a 동 or 구, like 역삼동 or 강남구."),
    "need_place": ("어디 근처를 찾을까요? /주변 역삼동 3km처럼 동네 이름을 함께 알려 주세요.",
                   "Near where? Name a neighbourhood, like /near 역삼동 3km."),
    "results": ("'{query}' 검색 결과예요.", "Results for '{query}'."),
    "results_widened": ("내 동네 근처에는 없어서 전체에서 찾은 '{query}' 검색 결과예요.",
                        "Nothing near your neighbourhood: results for '{query}' from everywhere."),
    "results_widened_corrected": ("내 동네 근처에는 없어서 전체에서 '{query}' 대신 '{suggestion}'(으)로 찾은 결과예요.",
                                  "Nothing near your neighbourhood: results for '{suggestion}' instead of '{query}'"
                                  " from everywhere."),
    "category_results": ("{name} 카테고리의 물건이에요.", "Items in {name}."),
    "results_corrected": ("'{query}' 대신 '{suggestion}' 검색 결과예요.",
                          "Results for '{suggestion}' instead of '{query}'."),
    "near_results": ("{place} 주변 {distance} 안의 물건이에요.", "Items within {distance} of {place}."),
    "no_results": ("'{query}' 검색 결과가 없어요.", "Nothing found for '{query}'."),
    "no_results_suggest": ("'{query}' 검색 결과가 없어요. {suggestion|으로} 찾아볼까요?",
                           "Nothing found for '{query}'. Try '{suggestion}'?"),
    "nothing_near": ("{place} 주변 {distance} 안에는 아직 물건이 없어요.", "No items within {distance} of {place} yet."),
    "more": ("더 보기", "More"),
    "no_more": ("더 보여 드릴 물건이 없어요.", "There is nothing more to show."),
    "wish": ("♡ 찜", "♡ Wish"),
    "ask": ("문의하기", "Ask the owner"),
    "wished": ("{title|을} 찜했어요.", "Added '{title}' to your wishes."),
    "no_wishes": ("아직 찜한 물건이 없어요.", "You have no wishes yet."),
    "wishes": ("찜한 물건이에요.", "Your wishes."),
    "item": ("물건 정보예요.", "Here is the item."),
    "item_missing": ("{number}번 물건은 없거나 내려갔어요.", "Item #{number} does not exist or was taken down."),
    "first_message": ("안녕하세요! {title} 빌릴 수 있을까요?", "Hello! Could I rent your {title}?"),
    "deal_welcome": ("{title} 주인과의 대화방이에요. 궁금한 걸 물어보고, 날짜가 정해지면 대여 요청을 눌러 주세요.",
                     "This is your conversation with the owner of {title}. Ask anything; when you know the dates, "
                     "press Request rental."),
    "deal_intro": ("{name}님이 이 물건에 대해 문의했어요.", "{name} is asking about this item."),
    "own_item": ("내 물건에는 문의할 수 없어요.", "You cannot ask about your own item."),
    "cancelled": ("알겠어요, 하던 일을 멈췄어요.", "OK, I stopped what we were doing."),
    "nothing_to_cancel": ("지금 멈출 일은 없어요.", "There is nothing to stop."),
    "chat_hint": ("찾는 물건 이름을 보내 주시면 찾아 드릴게요. /help로 할 수 있는 일을 볼 수 있어요.",
                  "Send me the name of what you are looking for. Type /help to see what I can do."),
    "button_expired": ("이 버튼은 시간이 지나 더는 쓸 수 없어요. 다시 검색해 주세요.",
                       "This button has expired. Please search again."),
    "button_used": ("이미 누른 버튼이에요.", "That button was already used."),
    "button_retired": ("지난 단계의 버튼이라 더는 누를 수 없어요. 아래의 새 안내를 봐 주세요.",
                       "That button belongs to an earlier step; see the newer message below."),
    "button_not_yours": ("다른 분의 버튼이라 누를 수 없어요.", "That button belongs to someone else."),
    "button_invalid": ("알 수 없는 버튼이에요.", "I don't recognise that button."),
    "busy": ("앞의 요청을 처리하는 중이에요. 잠시 후 다시 보내 주세요.",
             "I'm still working on your previous request; please send it again in a moment."),
    "flow_pick_category": ("아래 버튼에서 카테고리를 골라 주세요.", "Pick one of the categories below."),
    "flow_send_photo": ("사진은 사진 보내기로 올려 주세요. 없으면 '건너뛰기'를 눌러 주세요.",
                        "Send photos as images, or press Skip."),
    "flow_bad_money": ("금액은 5,000원, 5천원처럼 알려 주세요.", "Give the amount like 5000."),
    "flow_bad_place": ("어디인지 모르겠어요. 역삼동, 마포구처럼 동네 이름으로 알려 주세요.",
                       "I don't know that place. Name a neighbourhood like 역삼동."),
    "flow_bad_dates": ("날짜를 알아듣지 못했어요. 12/24~12/31, 12/24부터, 오늘부터처럼 오늘 이후 날짜로 알려 주세요.",
                       "I couldn't read those dates. Use 12/24~12/31, 12/24부터 or 오늘부터 (from today on)."),
    "flow_use_buttons": ("아래 버튼으로 등록하거나 고칠 항목을 골라 주세요.", "Use the buttons below to list or edit."),
    "flow_photo_taken": ("사진 {count}장을 받았어요. 더 올리거나 '다음'을 눌러 주세요.",
                         "Got {count} photo(s). Upload more or press Next."),
    "flow_stale_button": ("지금 단계의 버튼이 아니에요. 마지막 질문의 버튼을 눌러 주세요.",
                          "That button belongs to an earlier step; use the latest question's buttons."),
    "flow_published": ("{title} 등록을 마쳤어요! 물건 번호는 #{number|이에요}.", "Listed {title}! Its number is #{number}."),
    "flow_updated": ("#{number} {title}의 정보를 고쳤어요.", "Updated #{number} {title}."),
    "my_page": ("내 정보예요. 올린 물건 {count}개, 찜 {wishes}개, 빌리는 중 {borrowing}건, 빌려주는 중 {lending}건.\n"
                "평점 {rating} · 완료한 거래 {completed}건 · 제때 반납 {on_time} · 파손 청구 {claims}건\n"
                "빌리페이 계좌: {account} · 알림 {unread}개",
                "Your page: {count} items, {wishes} wishes, borrowing {borrowing}, lending {lending}.\n"
                "Rating {rating} · {completed} completed · on time {on_time} · {claims} claims\n"
                "BilliPay account: {account} · {unread} notifications"),
    "no_account": ("연결 안 됨 (/결제 link)", "not linked (/pay link)"),
    "trust_line": ("{name}님 평점 {rating} · 완료한 거래 {completed}건", "{name}: rating {rating}, {completed} completed"),
    "field_rating": ("주인 평점", "Owner rating"),
    "edit": ("수정", "Edit"),
    "delete": ("삭제", "Delete"),
    "deleted": ("{title|을} 내렸어요.", "Took down {title}."),
    "flow_timed_out": ("한동안 답이 없어서 하던 물건 등록을 멈췄어요. 다시 하려면 /등록을 보내 주세요.",
                       "You were away for a while, so I stopped the listing. Send /post to start again."),
    "filter_price": ("{price} 이하", "Up to {price}"),
    "category_chip": ("#{name}", "#{name}"),
    "filter_radius": ("{distance} 안", "Within {distance}"),
    "pick_category": ("어떤 카테고리를 볼까요?", "Which category?"),
    "sub_categories": ("{name}의 세부 카테고리예요.", "Sub-categories of {name}."),
    "unknown_category": ("'{name}' 카테고리는 없어요. /카테고리로 목록을 볼 수 있어요.",
                         "There is no category called {name}. Type /category to see them."),
    "here": ("이곳", "here"),
    "rent_button": ("대여 요청", "Request rental"),
    "need_dates": ("날짜를 알려 주세요. 예) 12/24~12/26, 내일부터 3일, 이번 주말",
                   "Give the dates, e.g. 12/24~12/26."),
    "field_price": ("일 대여료", "Per day"),
    "field_deposit": ("보증금", "Deposit"),
    "field_distance": ("거리", "Distance"),
    "field_condition": ("상태", "Condition"),
    "field_wishes": ("찜", "Wishes"),
    "field_place": ("장소", "Place"),
    "welcome": ("안녕하세요, {name}님! 빌리마켓 도우미 빌리예요.\n이웃의 물건을 하루 단위로 빌리고, 안 쓰는 물건은 빌려줄 수 "
                "있어요. 찾는 물건 이름을 보내거나 아래에서 골라 보세요.",
                "Hello, {name}! I'm Billi, the market's assistant.\nRent your neighbours' things by the day, and lend "
                "yours. Send me what you are looking for, or pick below."),
    "welcome_home": ("내 동네를 알려 주시면 가까운 물건부터 보여 드릴게요.", "Tell me your neighbourhood to see what is near."),
    "chip_camping_chair": ("캠핑의자 찾기", "Find a camping chair"),
    "camping_chair": ("캠핑의자", "캠핑의자"),
    "chip_near": ("내 주변 물건", "Near me"),
    "chip_category": ("카테고리", "Categories"),
    "chip_post": ("물건 올리기", "List an item"),
    "chip_wishes": ("찜 목록", "My wishes"),
    "chip_cancel": ("취소", "Cancel"),
    "chip_search": ("{query} 찾기", "Find {query}"),
    "chip_near_place": ("{place} 주변", "Near {place}"),
    "home_set": ("내 동네를 {place|으로} 정했어요. 이제 주변 물건과 검색은 {place}에서 가까운 것부터 보여 드려요.",
                 "Your neighbourhood is now {place}; nearby items and searches start from there."),
    "home_here": ("지금 위치", "your location"),
    "home_is": ("내 동네는 {place|이에요}. 바꾸려면 /동네 <동 이름>을 보내 주세요.",
                "Your neighbourhood is {place}. Send /home <name> to change it."),
    "need_home": ("어느 동네 주변을 볼까요? 아래에서 내 동네를 정해 주세요.", "Near where? Set your neighbourhood below."),
    "need_home_elsewhere": ("어느 동네 주변을 볼까요? '/주변 역삼동'처럼 동 이름을 붙이거나, 내 도우미 방에서 내 동네를 정해 "
                            "주세요.", "Near where? Add a place ('/near Yeoksam-dong'), or set your neighbourhood in "
                            "your assistant room."),
    "mine": ("내 물건", "Mine"),
    "per_day": ("하루 {price}", "{price} a day"),
    "deposit_line": ("보증금 {deposit}", "Deposit {deposit}"),
    "this_weekend": ("이번 주말", "This weekend"),
    "next_weekend": ("다음 주말", "Next weekend"),
    "pick_dates": ("날짜 고르기", "Pick dates"),
}

def chip(label: str, send: str) -> dict[str, str]:
    """A quick reply: the Korean words on the chip, and what pressing it sends (a search word, or a command that
    runs without showing itself)."""
    return {"label": label, "send": send}


def say(key: str, locale: str = "ko", **params: Any) -> str:
    ko, en = TEXTS[key]
    return fill(en if locale == "en" else ko, locale, params)


def won(amount: int, locale: str = "ko") -> str:
    return f"{amount:,}원" if locale != "en" else f"₩{amount:,}"


def distance(metres: float | None) -> str:
    """"950m" under a kilometre (to 10 m), else kilometres with one decimal only when it says something: "1km",
    "2.5km" (never "1.0km")."""
    if metres is None:
        return ""
    rounded = round(metres / 10) * 10
    if rounded < 1000:
        return f"{rounded:.0f}m"
    km = round(metres / 1000, 1)
    return f"{km:.0f}km" if km == int(km) else f"{km:.1f}km"
