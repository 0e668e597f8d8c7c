// The menu's icons, imported one by one (never the whole set).
import { Odometer, Goods, Tickets, User, MagicStick, Avatar, Key, Document, Setting, Connection, Shop, Wallet, Money, ChatDotRound, Trophy, Link, Message, Picture, DataAnalysis, Calendar, Present, AlarmClock, FirstAidKit } from "@element-plus/icons-vue";
import type { Component } from "vue";

export const icons: Record<string, Component> = { Odometer, Goods, Tickets, User, MagicStick, Avatar, Key, Document, Setting, Connection, Shop, Wallet, Money, ChatDotRound, Trophy, Link, Message, Picture, DataAnalysis, Calendar, Present, AlarmClock, FirstAidKit };
